"""Key ids, rows and update orders of a pool's flat count and sum stores, in arrays that one
numba kernel call per decision reads and updates (``docs/design/compiled-stores.md``).

The stores of a :class:`~fengkong.rules.flat.pool.FlatPool` share these arrays:

* ``head``: one row per (store, key id) pair held: the tally (:mod:`.tally`'s columns),
  ``PREV`` / ``NEXT``, the row's neighbours in its store's update order (``-1``: none), and
  ``GID``, the key id. Free rows are linked through ``NEXT`` from ``ctl[FREE_ROW]``.
* ``rowmap[gid]``: ``HOLDERS``, the number of stores holding the id, then, in column
  ``1 + s``, the row of the id in store slot ``s`` (``-1``: not held). An id nobody holds is
  dead: its ``HOLDERS`` is ``-epoch`` of the call that found it so, and it is listed in
  ``dead`` for the owner to delete from its key table once the call returns.
* ``st[s]``, per store slot: the ends of its update order (``FRONT``, ``BACK``), its number
  of keys (``HELD``), its last sweep's cutoff (``SWEPT``), whether that sweep is owed
  (``OWED``) and the first ``now`` at which it must be settled (``DUE``), and its window:
  bucket width ``G``, buckets ``N``, ``SPAN`` (see ``KeyedWindow``) and ``MAX_KEYS``.
* ``ctl``: the free-row list, the number of dead ids listed, and the call epoch.

The operations are those of :class:`~fengkong.rules.windows.KeyedWindow` and
:class:`~fengkong.rules.windows.CountWindow` (the reference the tests compare against, key
by key and in the same update order): a key moves to the back of its store's order when its
newest bucket enters a later span, a sweep pops the leading run of expired keys, a full store
sweeps and then drops its front key, and an owed sweep is popped ``DRAIN`` keys per decision
(:func:`decide_reads` / :func:`decide_updates`; the flat stores of a pool share their own
budget, apart from the Python stores').

A call that could need more rows or slab words than the pool has changes nothing and returns
``NEED_ROWS`` or ``NEED_SLAB``; the owner grows the arrays and calls again.
"""

from __future__ import annotations

import numba as nb

from fengkong.rules.flat import tally
from fengkong.rules.flat.tally import GID, LAST, NEXT, PREV, TOTAL_HI, TOTAL_LO
from fengkong.rules.windows import DRAIN

# columns of ``st``
FRONT, BACK, HELD, SWEPT, OWED, DUE, G, N, SPAN, MAX_KEYS = range(10)
ST_WIDTH = 10
# ``ctl``
FREE_ROW, FREE_ROWS, DEAD, EPOCH = range(4)
CTL_WIDTH = 4
HOLDERS = 0  # the column of ``rowmap`` counting an id's stores
NEED_ROWS = -1
NEED_SLAB = -2
_ALL = 2**62


@nb.njit(cache=True)
def _link_back(head, st, s, r):
    back = st[s, BACK]
    head[r, PREV] = back
    head[r, NEXT] = -1
    if back < 0:
        st[s, FRONT] = r
    else:
        head[back, NEXT] = r
    st[s, BACK] = r


@nb.njit(cache=True)
def _unlink(head, st, s, r):
    before = head[r, PREV]
    after = head[r, NEXT]
    if before < 0:
        st[s, FRONT] = after
    else:
        head[before, NEXT] = after
    if after < 0:
        st[s, BACK] = before
    else:
        head[after, PREV] = before


@nb.njit(cache=True)
def _take_row(head, rowmap, st, ctl, s, g):
    """A free row for id ``g`` in store ``s``, at the back of its order (the caller checked
    that a row is free)."""
    r = ctl[FREE_ROW]
    ctl[FREE_ROW] = head[r, NEXT]
    ctl[FREE_ROWS] -= 1
    head[r, GID] = g
    rowmap[g, 1 + s] = r
    holders = rowmap[g, HOLDERS]
    rowmap[g, HOLDERS] = (holders if holders > 0 else 0) + 1
    st[s, HELD] += 1
    _link_back(head, st, s, r)
    return r


@nb.njit(cache=True)
def _drop_row(head, slab, meta, rowmap, st, ctl, dead, s, r):
    """Pop row ``r`` from store ``s``: emptied and freed; its id dies with its last holder."""
    _unlink(head, st, s, r)
    g = head[r, GID]
    rowmap[g, 1 + s] = -1
    st[s, HELD] -= 1
    tally.release(head, slab, meta, r)
    head[r, NEXT] = ctl[FREE_ROW]
    ctl[FREE_ROW] = r
    ctl[FREE_ROWS] += 1
    holders = rowmap[g, HOLDERS] - 1
    if holders == 0:
        holders = -ctl[EPOCH]
        dead[ctl[DEAD]] = g
        ctl[DEAD] += 1
    rowmap[g, HOLDERS] = holders


@nb.njit(cache=True)
def _pop_expired(head, slab, meta, rowmap, st, ctl, dead, s, cutoff, limit):
    """``KeyedWindow._pop_expired``: pop at most ``limit`` keys of the leading run whose newest
    bucket is at or before ``cutoff``; the number popped."""
    popped = 0
    while popped < limit:
        r = st[s, FRONT]
        if r < 0 or head[r, LAST] > cutoff:
            break
        _drop_row(head, slab, meta, rowmap, st, ctl, dead, s, r)
        popped += 1
    return popped


@nb.njit(cache=True)
def _sweep(head, slab, meta, rowmap, st, ctl, dead, s, cutoff):
    st[s, SWEPT] = cutoff
    st[s, OWED] = 0
    _pop_expired(head, slab, meta, rowmap, st, ctl, dead, s, cutoff, _ALL)


@nb.njit(cache=True)
def _drain(head, slab, meta, rowmap, st, ctl, dead, s, limit):
    """``KeyedWindow.drain``: pop at most ``limit`` keys of the owed sweep."""
    popped = _pop_expired(head, slab, meta, rowmap, st, ctl, dead, s, st[s, SWEPT], limit)
    if popped < limit or st[s, FRONT] < 0:
        st[s, OWED] = 0
    return popped


@nb.njit(cache=True)
def _begin(ctl, st, now, drain_owed, head, slab, meta, rowmap, dead):
    """A call's start: a new epoch, no dead id listed; with ``drain_owed``, the decision's
    share of the owed sweeps (``windows.drain_owed``): a store whose cutoff passed its sweep
    is settled, the others pop ``DRAIN`` keys between them, in slot order."""
    ctl[EPOCH] += 1
    ctl[DEAD] = 0
    if not drain_owed:
        return
    budget = DRAIN
    for s in range(st.shape[0]):
        if st[s, OWED] == 0:
            continue
        if now >= st[s, DUE]:
            _sweep(head, slab, meta, rowmap, st, ctl, dead, s, st[s, SWEPT])
        elif budget > 0:
            budget -= _drain(head, slab, meta, rowmap, st, ctl, dead, s, budget)


@nb.njit(cache=True)
def _total(head, slab, meta, rowmap, s, g, cutoff):
    """Store ``s``'s total for id ``g`` (``-1``: a key no table holds) at ``cutoff``, its
    expired buckets dropped: ``(hi, lo)``."""
    if g < 0:
        return 0, 0
    r = rowmap[g, 1 + s]
    if r < 0:
        return 0, 0
    tally.expire(head, slab, meta, r, cutoff)
    return head[r, TOTAL_HI], head[r, TOTAL_LO]


@nb.njit(cache=True)
def _update(head, slab, meta, rowmap, st, ctl, dead, s, g, idx, cutoff, hi, lo):
    """``CountWindow._fold`` of amount ``(hi, lo)`` into bucket ``idx`` (in the window) of id
    ``g`` in store ``s``. A key an owed sweep dropped but has not popped yet (its newest
    bucket at or before ``SWEPT``) starts over at the back, as it would once settled."""
    r = rowmap[g, 1 + s]
    if r >= 0:
        last = head[r, LAST]
        if st[s, OWED] != 0 and last <= st[s, SWEPT]:
            tally.release(head, slab, meta, r)
            _unlink(head, st, s, r)
            _link_back(head, st, s, r)
        elif last < idx and last // st[s, SPAN] < idx // st[s, SPAN]:
            _unlink(head, st, s, r)
            _link_back(head, st, s, r)
    else:
        if st[s, HELD] >= st[s, MAX_KEYS]:
            _sweep(head, slab, meta, rowmap, st, ctl, dead, s, cutoff)
            if st[s, HELD] >= st[s, MAX_KEYS]:
                _drop_row(head, slab, meta, rowmap, st, ctl, dead, s, st[s, FRONT])
        r = _take_row(head, rowmap, st, ctl, s, g)
    tally.add(head, slab, meta, r, idx, hi, lo)


@nb.njit(cache=True)
def _space(head, slab, meta, rowmap, ctl, s, g, words):
    """Slab words one more update of id ``g`` in store ``s`` may carve, added to ``words``
    (a whole chunk of the class it may need; free chunks are not counted)."""
    r = rowmap[g, 1 + s] if g >= 0 else -1
    c = 0 if r < 0 else tally._needs_chunk(head, r)
    return words + (3 * (1 << c) if c >= 0 else 0)


@nb.njit(cache=True)
def _settle_id(rowmap, ctl, dead, g):
    """After updates: id ``g``, if no store took it, is dead too (a fresh id whose updates did
    not run)."""
    if g >= 0 and rowmap[g, HOLDERS] <= 0 and rowmap[g, HOLDERS] != -ctl[EPOCH]:
        rowmap[g, HOLDERS] = -ctl[EPOCH]
        dead[ctl[DEAD]] = g
        ctl[DEAD] += 1


@nb.njit(cache=True)
def _unlist_revived(rowmap, ctl, dead):
    """Unlist the ids listed dead that a later update of the call took again."""
    kept = 0
    for j in range(ctl[DEAD]):
        g = dead[j]
        if rowmap[g, HOLDERS] <= 0:
            dead[kept] = g
            kept += 1
    ctl[DEAD] = kept


@nb.njit(cache=True)
def decide_reads(head, slab, meta, rowmap, st, ctl, dead, plan, out, args):
    """A decision's reads, after its share of the owed sweeps (:func:`_begin`): ``args =
    (now, g_0, g_1, ...)``, the id of each read's key (``-1``: absent); ``plan = (reads, s_0,
    s_1, ...)``, each read's store slot. Read ``j``'s total goes to ``out[2j:2j+2]`` as ``(hi,
    lo)``. Returns the dead ids listed."""
    now = args[0]
    _begin(ctl, st, now, True, head, slab, meta, rowmap, dead)
    for j in range(plan[0]):
        s = plan[1 + j]
        cutoff = now // st[s, G] - st[s, N]
        hi, lo = _total(head, slab, meta, rowmap, s, args[1 + j], cutoff)
        out[2 * j] = hi
        out[2 * j + 1] = lo
    return ctl[DEAD]


@nb.njit(cache=True)
def decide_updates(head, slab, meta, rowmap, st, ctl, dead, plan, args):
    """A decision's updates: ``args = (now, ts, first, then per update: g, hi, lo)`` (with
    ``first``, no reads call came before: this one drains the owed sweeps), ``g``
    the id of the key (``-1``: the update does not run: a filter or guard failed), ``(hi,
    lo)`` the amount (1 for a count); ``plan = (reads, ..., updates, s_0, s_1, ...)``, each
    update's store slot after the reads' (see :func:`decide_reads`). Each update inside its
    window folds the event (:func:`_update`); then each store updated whose cutoff passed its
    last sweep owes the sweep (``KeyedWindow.defer``). Returns the dead ids listed, or
    ``NEED_ROWS`` / ``NEED_SLAB`` (nothing changed)."""
    now = args[0]
    ts = args[1]
    at = 1 + plan[0]
    updates = plan[at]
    rows = 0
    words = 0
    for j in range(updates):
        g = args[3 + 3 * j]
        if g >= 0:
            rows += 1
            words = _space(head, slab, meta, rowmap, ctl, plan[at + 1 + j], g, words)
    if rows > ctl[FREE_ROWS]:
        return NEED_ROWS
    if meta[-1] + words > len(slab):
        return NEED_SLAB
    _begin(ctl, st, now, args[2] != 0, head, slab, meta, rowmap, dead)
    for j in range(updates):
        g = args[3 + 3 * j]
        if g < 0:
            continue
        s = plan[at + 1 + j]
        cutoff = now // st[s, G] - st[s, N]
        idx = ts // st[s, G]
        if idx > cutoff:
            _update(
                head, slab, meta, rowmap, st, ctl, dead, s, g, idx, cutoff,
                args[4 + 3 * j], args[5 + 3 * j],
            )  # fmt: skip
    for j in range(updates):
        if args[3 + 3 * j] < 0:
            continue
        s = plan[at + 1 + j]
        cutoff = now // st[s, G] - st[s, N]
        if ts // st[s, G] > cutoff and cutoff > st[s, SWEPT]:
            st[s, SWEPT] = cutoff
            st[s, OWED] = 1
            st[s, DUE] = (cutoff + st[s, N] + 1) * st[s, G]
    for j in range(updates):
        _settle_id(rowmap, ctl, dead, args[3 + 3 * j])
    _unlist_revived(rowmap, ctl, dead)
    return ctl[DEAD]


# --- one operation at a time: the stores' own methods (reference path, snapshots, tests) ----


@nb.njit(cache=True)
def add(head, slab, meta, rowmap, st, ctl, dead, s, g, idx, cutoff, hi, lo):
    """``CountWindow.add`` after its checks: fold, then sweep at once if the cutoff passed the
    last sweep. Returns the dead ids listed, or ``NEED_ROWS`` / ``NEED_SLAB``."""
    if ctl[FREE_ROWS] < 1:
        return NEED_ROWS
    if meta[-1] + _space(head, slab, meta, rowmap, ctl, s, g, 0) > len(slab):
        return NEED_SLAB
    _begin(ctl, st, 0, False, head, slab, meta, rowmap, dead)
    _update(head, slab, meta, rowmap, st, ctl, dead, s, g, idx, cutoff, hi, lo)
    if cutoff > st[s, SWEPT]:
        _sweep(head, slab, meta, rowmap, st, ctl, dead, s, cutoff)
    _settle_id(rowmap, ctl, dead, g)
    _unlist_revived(rowmap, ctl, dead)
    return ctl[DEAD]


@nb.njit(cache=True)
def read(head, slab, meta, rowmap, s, g, cutoff, out):
    """Store ``s``'s total for id ``g`` at ``cutoff`` into ``out[0:2]``."""
    out[0], out[1] = _total(head, slab, meta, rowmap, s, g, cutoff)


@nb.njit(cache=True)
def sweep(head, slab, meta, rowmap, st, ctl, dead, s, cutoff):
    """``KeyedWindow._sweep``; the dead ids listed."""
    _begin(ctl, st, 0, False, head, slab, meta, rowmap, dead)
    _sweep(head, slab, meta, rowmap, st, ctl, dead, s, cutoff)
    return ctl[DEAD]


@nb.njit(cache=True)
def drain(head, slab, meta, rowmap, st, ctl, dead, s, limit):
    """``KeyedWindow.drain``; the number popped (the dead ids are counted in ``ctl``)."""
    _begin(ctl, st, 0, False, head, slab, meta, rowmap, dead)
    return _drain(head, slab, meta, rowmap, st, ctl, dead, s, limit)


@nb.njit(cache=True)
def clear(head, slab, meta, rowmap, st, ctl, dead, s):
    """Pop every key of store ``s``; the dead ids listed."""
    _begin(ctl, st, 0, False, head, slab, meta, rowmap, dead)
    while st[s, FRONT] >= 0:
        _drop_row(head, slab, meta, rowmap, st, ctl, dead, s, st[s, FRONT])
    return ctl[DEAD]


@nb.njit(cache=True)
def append(head, rowmap, st, ctl, s, g):
    """A new row for id ``g`` at the back of store ``s`` (a restore; a row is free)."""
    return _take_row(head, rowmap, st, ctl, s, g)
