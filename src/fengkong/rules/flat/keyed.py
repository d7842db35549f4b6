"""Key ids, rows and update orders of a pool's flat count, sum, min and max stores, in arrays
that one numba kernel call per decision reads and updates (``docs/design/compiled-stores.md``).

The stores of a :class:`~fengkong.rules.flat.pool.FlatPool` share these arrays:

* ``heads[t]``, one per key table ``t`` (one per key expression): ``width`` rows per key id,
  one for each store of the table, so that a key's rows are adjacent (a decision reads and
  updates them together). Row ``g * width + j`` is id ``g``'s row in the table's store ``j``:
  the tally or the queue (:mod:`.tally`'s columns, :mod:`.extremum`), ``PREV`` / ``NEXT``
  (its neighbours in the store's update order; ``-1``: none), ``HELD`` (whether the store
  holds the key) and, in the id's first row, ``HOLDERS`` (how many of the table's stores
  hold it). An id no store holds is dead: its ``HOLDERS`` is ``-epoch`` of the call that
  found it so, and ``(t << 40) | g`` is listed in ``dead`` for the owner to delete from its
  key table once the call returns.
* ``st[s]``, per store slot: the ends of its update order (``FRONT``, ``BACK``), its number
  of keys (``KEYS``), its last sweep's cutoff (``SWEPT``), whether that sweep is owed
  (``OWED``) and the first ``now`` at which it must be settled (``DUE``), its window (bucket
  width ``G``, buckets ``N``, ``SPAN`` (see ``KeyedWindow``), ``MAX_KEYS``), its place
  (``TABLE``, ``J``, and the table's ``WIDTH``), its ``KIND`` (``SUM``, ``MIN``, ``MAX``,
  ``LATEST``, ``DISTINCT``), for a distinct count its value table (``VALUES``) and
  ``LIMIT`` (``exact_limit``), and the keys its owed sweep popped so far (``POPPED``) and
  its previous sweep popped in all (``PACE``, see :func:`_begin`).
* ``ctl`` and ``dead``: the ids that died in the call (:mod:`.ids`).

A distinct count's row holds its exact set (:mod:`.distinct`, the values as ids of the pool's
value table for the field's type, ``heads[VALUES]``), or is marked ``SKETCHED``: past
``LIMIT`` values the key's set is a :class:`~fengkong.rules.sketch.Sketch` its owner keeps
(numba does not hash strings as the sketch must), and the row keeps its place in the
store's order, ``LAST`` the sketch's newest bucket. A read of such a row reports 2 for its
owner to read the sketch after the call; an update moves the row and reports 1 for its
owner to add the value to the sketch; an update that would take an exact set past
``LIMIT`` evicts and moves, and reports 2: its owner makes the sketch (:func:`to_sketch`).

The operations are those of :class:`~fengkong.rules.windows.KeyedWindow`,
:class:`~fengkong.rules.windows.CountWindow` and
:class:`~fengkong.rules.windows.ExtremumWindow` (the reference the tests compare against, key
by key and in the same update order): a key moves to the back of its store's order when its
newest bucket enters a later span, a sweep pops the leading run of expired keys, a full store
sweeps and then drops its front key, and an owed sweep's keys are popped over the next
decisions, at a pace (:func:`_begin`; unlike the Python stores, a distinct count's sweep is
owed too: a row in sketch mode that an update restarts lets its sketch go, as a popped one
does).

A call that could need more slab words than the pool has changes nothing and returns
``NEED_SLAB``; the owner grows the slab and calls again.
"""

from __future__ import annotations

import functools
from typing import Any

import numba as nb

from fengkong.rules.flat import distinct, extremum, tally
from fengkong.rules.flat.ids import (
    DEAD,
    EPOCH,
    ID_MASK,
    RESULT,
    SKETCH_TAG,
    TABLE_SHIFT,
    listed,
    settle,
)
from fengkong.rules.flat.jit import kernel
from fengkong.rules.flat.tally import LAST, LENGTH, TOTAL_HI, TOTAL_LO

# columns of a head row after the tally's
PREV, NEXT, HELD, HOLDERS = range(tally.TALLY_WIDTH, tally.TALLY_WIDTH + 4)
ROW_WIDTH = tally.TALLY_WIDTH + 4
# columns of ``st``
(
    FRONT,
    BACK,
    KEYS,
    SWEPT,
    OWED,
    DUE,
    G,
    N,
    SPAN,
    MAX_KEYS,
    TABLE,
    J,
    WIDTH,
    KIND,
    VALUES,
    LIMIT,
    POPPED,
    PACE,
) = range(18)
ST_WIDTH = 18
# a store's ``KIND``: a count or sum (a count adds 1), a minimum or a maximum (:mod:`.extremum`),
# a last value (the row holds its bucket in ``LAST`` and its time in ``TS``; the value is
# the owner's, by id: see ``decide``), or a distinct count (see above)
SUM, MIN, MAX, LATEST, DISTINCT = range(5)
TS = tally.TOTAL_HI
SKETCHED = tally.TOTAL_LO
NEED_SLAB = -1
_ALL = 2**62


@kernel
def _link_back(head, st, s, r):
    back = st[s, BACK]
    head[r, PREV] = back
    head[r, NEXT] = -1
    if back < 0:
        st[s, FRONT] = r
    else:
        head[back, NEXT] = r
    st[s, BACK] = r


@kernel
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


@kernel
def _take(head, st, s, r):
    """Store ``s`` takes row ``r`` (its key was not held), at the back of its order."""
    head[r, HELD] = 1
    first = r - r % st[s, WIDTH]
    holders = head[first, HOLDERS]
    head[first, HOLDERS] = (holders if holders > 0 else 0) + 1
    st[s, KEYS] += 1
    _link_back(head, st, s, r)


@kernel
def _drop(heads, slab, meta, st, ctl, dead, s, r):
    """Pop row ``r`` from store ``s``, emptied (a distinct set's values let go, a sketch
    listed for its owner to drop); its id dies with its last holder."""
    head = heads[st[s, TABLE]]
    _unlink(head, st, s, r)
    head[r, HELD] = 0
    st[s, KEYS] -= 1
    width = st[s, WIDTH]
    if st[s, KIND] == DISTINCT:
        if head[r, SKETCHED]:
            listed(ctl, dead, SKETCH_TAG | (s << TABLE_SHIFT) | (r // width))
        else:
            vt = st[s, VALUES]
            distinct.clear(head, slab, meta, heads[vt], ctl, dead, vt, r)
    tally.release(head, slab, meta, r)
    first = r - r % width
    holders = head[first, HOLDERS] - 1
    if holders == 0:
        holders = -ctl[EPOCH]
        listed(ctl, dead, (st[s, TABLE] << TABLE_SHIFT) | (r // width))
    head[first, HOLDERS] = holders


@kernel
def _pop_expired(heads, slab, meta, st, ctl, dead, s, cutoff, limit):
    """``KeyedWindow._pop_expired``: pop at most ``limit`` keys of the leading run whose newest
    bucket is at or before ``cutoff``; the number popped."""
    head = heads[st[s, TABLE]]
    popped = 0
    while popped < limit:
        r = st[s, FRONT]
        if r < 0 or head[r, LAST] > cutoff:
            break
        _drop(heads, slab, meta, st, ctl, dead, s, r)
        popped += 1
    return popped


@kernel
def _sweep(heads, slab, meta, st, ctl, dead, s, cutoff):
    """``KeyedWindow._sweep`` (an owed sweep's keys not popped yet go with it); the keys the
    sweep popped in all, ``PACE``, pace the next one (:func:`_begin`)."""
    popped = _pop_expired(heads, slab, meta, st, ctl, dead, s, cutoff, _ALL)
    st[s, PACE] = popped + (st[s, POPPED] if st[s, OWED] else 0)
    st[s, SWEPT] = cutoff
    st[s, OWED] = 0


@kernel
def _drain(heads, slab, meta, st, ctl, dead, s, limit):
    """``KeyedWindow.drain``: pop at most ``limit`` keys of the owed sweep."""
    popped = _pop_expired(heads, slab, meta, st, ctl, dead, s, st[s, SWEPT], limit)
    st[s, POPPED] += popped
    if popped < limit or st[s, FRONT] < 0:
        st[s, OWED] = 0
        st[s, PACE] = st[s, POPPED]
    return popped


@kernel
def _begin(heads, slab, meta, st, ctl, dead, now, drain_owed):
    """A call's start: a new epoch, no dead id listed; with ``drain_owed``, the decision's
    share of the owed sweeps. A store whose cutoff passed its sweep is settled; the others
    pop their keys at a pace: an owed sweep at cutoff ``c`` began when ``now`` reached
    ``(c + N) · G`` and is due one bucket later, and by ``now`` it has popped at least the
    same share of the keys its store's previous sweep popped (``PACE``), and at least one
    key a call. So a bucket's expired keys leave over the bucket's events, a few each, and
    none is left for the event that would settle it (the Python stores' ``drain_owed`` pops
    ``DRAIN`` keys a decision between them: a pack's flat stores together may owe more keys
    each bucket than ``DRAIN`` times its events)."""
    ctl[EPOCH] += 1
    ctl[DEAD] = 0
    if not drain_owed:
        return
    for s in range(st.shape[0]):
        if st[s, OWED] == 0:
            continue
        if now >= st[s, DUE]:
            _sweep(heads, slab, meta, st, ctl, dead, s, st[s, SWEPT])
            continue
        g = st[s, G]
        share = -(-st[s, PACE] * (now - (st[s, SWEPT] + st[s, N]) * g) // g)  # ceil
        _drain(heads, slab, meta, st, ctl, dead, s, max(1, share - st[s, POPPED]))


@kernel
def _count(heads, slab, meta, st, ctl, dead, s, g, cutoff):
    """Distinct store ``s``'s number of values for id ``g`` at ``cutoff``, as
    :func:`_value` gives it: ``(1, 0, n)``, its expired values let go, or ``(2, 0, 0)``
    for a row in sketch mode (its owner reads the sketch)."""
    if g < 0:
        return 1, 0, 0
    head = heads[st[s, TABLE]]
    r = g * st[s, WIDTH] + st[s, J]
    if head[r, HELD] == 0:
        return 1, 0, 0
    if head[r, SKETCHED]:
        return 2, 0, 0
    vt = st[s, VALUES]
    distinct.evict(head, slab, meta, heads[vt], ctl, dead, vt, r, cutoff)
    return 1, 0, head[r, LENGTH]


@kernel
def _value(heads, slab, meta, st, s, g, cutoff):
    """Store ``s``'s value for id ``g`` (``-1``: a key its table does not hold) at
    ``cutoff``, its expired buckets dropped: ``(present, hi, lo)``; a total is always
    present (0 for a key not held), an extremum or a last value only while the key has a
    live bucket (a distinct count: :func:`_count`)."""
    if g < 0:
        return 0, 0, 0
    head = heads[st[s, TABLE]]
    r = g * st[s, WIDTH] + st[s, J]
    if head[r, HELD] == 0:
        return 0, 0, 0
    if st[s, KIND] == SUM:
        tally.expire(head, slab, meta, r, cutoff)
        return 1, head[r, TOTAL_HI], head[r, TOTAL_LO]
    if st[s, KIND] == LATEST:  # the owner holds the value (``LastWindow.read``)
        return (1 if head[r, LAST] > cutoff else 0), 0, 0
    extremum.expire(head, slab, meta, r, cutoff)
    if head[r, LAST] == tally.NEVER:
        return 0, 0, 0
    hi, lo = extremum.best(head, slab, r)
    return 1, hi, lo


@kernel
def _update(heads, slab, meta, st, ctl, dead, s, g, ts, idx, cutoff, hi, lo):
    """``CountWindow._fold`` of amount ``(hi, lo)`` into bucket ``idx`` (in the window) of id
    ``g`` in store ``s`` (an extremum's fold for a min or max; for a last value, the event at
    ``ts`` takes the row if it is the latest, ``LastWindow.add``; for a distinct count,
    ``DistinctWindow.add`` of value id ``hi``, its expired values evicted before the key
    moves). A key an owed sweep dropped but has not popped yet (its newest bucket at or
    before ``SWEPT``) starts over at the back, as it would once settled. Returns 1 if a last
    value's row took the event (its owner then keeps the event's value) or a distinct row
    in sketch mode was updated (its owner adds the value to the sketch), 2 if a distinct
    set needs to become a sketch (see the module docstring), else 0."""
    head = heads[st[s, TABLE]]
    r = g * st[s, WIDTH] + st[s, J]
    kind = st[s, KIND]
    if kind == DISTINCT and head[r, HELD] != 0 and head[r, SKETCHED] == 0:
        vt = st[s, VALUES]
        distinct.evict(head, slab, meta, heads[vt], ctl, dead, vt, r, cutoff)
    if head[r, HELD] != 0:
        last = head[r, LAST]
        if st[s, OWED] != 0 and last <= st[s, SWEPT]:
            if head[r, SKETCHED] and kind == DISTINCT:  # its sketch goes, as in _drop
                listed(ctl, dead, SKETCH_TAG | (s << TABLE_SHIFT) | g)
                head[r, SKETCHED] = 0
            tally.release(head, slab, meta, r)
            _unlink(head, st, s, r)
            _link_back(head, st, s, r)
        elif last < idx and last // st[s, SPAN] < idx // st[s, SPAN]:
            _unlink(head, st, s, r)
            _link_back(head, st, s, r)
    else:
        if st[s, KEYS] >= st[s, MAX_KEYS]:
            _sweep(heads, slab, meta, st, ctl, dead, s, cutoff)
            if st[s, KEYS] >= st[s, MAX_KEYS]:
                _drop(heads, slab, meta, st, ctl, dead, s, st[s, FRONT])
        _take(head, st, s, r)
    if kind == SUM:
        tally.add(head, slab, meta, r, idx, hi, lo)
    elif kind == LATEST:
        if head[r, LAST] == tally.NEVER or ts >= head[r, TS]:
            head[r, FIRST] = idx
            head[r, LAST] = idx
            head[r, TS] = ts
            return 1
    elif kind == DISTINCT:
        if head[r, SKETCHED]:
            if idx > head[r, LAST]:
                head[r, LAST] = idx
            return 1
        if head[r, LENGTH] >= st[s, LIMIT] and distinct.find(head, slab, r, hi) < 0:
            return 2
        distinct.add(head, slab, meta, heads[st[s, VALUES]], r, idx, hi)
    else:
        extremum.add(head, slab, meta, r, idx, hi, lo, kind == MIN)
    return 0


@kernel
def _space(heads, st, s, g, words):
    """Slab words one more update of id ``g`` in store ``s`` may carve, added to ``words``
    (a whole chunk of the class it may need; free chunks are not counted). A min or max
    may need a first chunk even for a key it holds: one an owed sweep dropped starts over
    (:func:`_update`), its chunk let go; so may a distinct set whose every value the
    update evicts first."""
    head = heads[st[s, TABLE]]
    r = g * st[s, WIDTH] + st[s, J]
    c = tally._needs_chunk(head, r)
    if st[s, KIND] == LATEST:
        c = -1
    elif st[s, KIND] != SUM:
        c = max(c, 0)
    elif head[r, HELD] == 0:  # a new key's first bucket is in its row
        c = -1
    return words + (3 * (1 << c) if c >= 0 else 0)


@kernel
def _settle_id(heads, st, ctl, dead, s, g, vid):
    """After updates: id ``g`` of store ``s``'s table, if no store took it, is dead too (a
    fresh id whose updates did not run), and so is a distinct count's value id ``vid`` no
    set took."""
    if g < 0:
        return
    t = st[s, TABLE]
    settle(heads[t], g * st[s, WIDTH], ctl, dead, (t << TABLE_SHIFT) | g)
    if st[s, KIND] == DISTINCT:
        vt = st[s, VALUES]
        settle(heads[vt], vid, ctl, dead, (vt << TABLE_SHIFT) | vid)


@kernel
def _unlist_revived(heads, st, ctl, dead):
    """Unlist the ids listed dead that a later update of the call took again (a sketch let
    go stays listed)."""
    kept = 0
    for j in range(ctl[DEAD]):
        code = dead[j]
        if code < SKETCH_TAG:
            t = code >> TABLE_SHIFT
            width = 1  # a value table's; a key table's, from any of its stores
            for s in range(st.shape[0]):
                if st[s, WIDTH] > 0 and st[s, TABLE] == t:
                    width = st[s, WIDTH]
                    break
            head = heads[t]
            if head[(code & ID_MASK) * width, head.shape[1] - 1] > 0:
                continue
        dead[kept] = code
        kept += 1
    ctl[DEAD] = kept


READS, UPDATES, FIRST = 1, 2, 4  # what a ``decide`` call does (see there)


def padded(count: int, least: int) -> int:
    """The size ``count`` things are padded to in a kernel's argument types: the first of
    ``least``, then 1.5 and 2 times each power of two above it, that holds them. numba
    compiles :func:`decide` once per type of its arguments (1-5 s; then it loads it from its
    cache on disk), and the number of key tables and of the call's arguments are part of the
    type: without padding, a pack version with one more flat feature or key expression than
    any before would compile as it loads, between two events, stalling every decision behind
    it; padded, a machine compiles a few sizes once."""
    size = least
    while size < count:
        size = size * 3 // 2 if size & (size - 1) == 0 else size // 3 * 4
    return size


@kernel
def decide(heads, slab, meta, st, ctl, dead, plan, out, args):
    """A decision's reads and updates of the pool's stores, in one call or two.

    ``args = (now, ts, what, ...)``: ``what`` is ``READS``, ``UPDATES`` or both, with
    ``FIRST`` when no call came before in this decision (this one drains the owed sweeps
    first, :func:`_begin`); the rest are the ids and amounts the plan points to.
    ``plan = (reads, (s, a) per read, updates, (s, a, h) per update)``: a store slot, the
    index in ``args`` of the key's id (``-1``: absent; for an update, that it does not run:
    a filter or guard failed), and for an update the index of its amount's two words
    ``(hi, lo)`` (``-1``: a count's 1; a distinct count's value id is one word). Updates
    that share a key and a filter, or an amount, share their arguments.

    Read ``j``'s value at its cutoff goes to ``out[3j:3j+3]`` as ``(present, hi, lo)``
    (:func:`_value`), before any update. Each update inside its window folds the event
    (:func:`_update`, whose result goes to ``out[3 * reads + j]``: what its owner does
    after the call); then each store updated whose cutoff passed its last sweep owes the
    sweep (``KeyedWindow.defer``).
    Returns the dead ids listed, or ``NEED_SLAB`` (nothing changed)."""
    now = args[0]
    ts = args[1]
    what = args[2]
    reads = plan[0]
    at = 2 + 2 * reads  # the first update's slot in ``plan``
    updates = plan[at - 1] if what & UPDATES else 0
    words = 0
    for j in range(updates):
        g = args[plan[at + 3 * j + 1]]
        if g >= 0:
            words = _space(heads, st, plan[at + 3 * j], g, words)
    if meta[-1] + words > len(slab):
        return NEED_SLAB
    _begin(heads, slab, meta, st, ctl, dead, now, what & FIRST != 0)
    if what & READS:
        for j in range(reads):
            s = plan[1 + 2 * j]
            cutoff = now // st[s, G] - st[s, N]
            g = args[plan[2 + 2 * j]]
            if st[s, KIND] == DISTINCT:
                value = _count(heads, slab, meta, st, ctl, dead, s, g, cutoff)
            else:
                value = _value(heads, slab, meta, st, s, g, cutoff)
            out[3 * j], out[3 * j + 1], out[3 * j + 2] = value
    for j in range(updates):
        p = at + 3 * j
        g = args[plan[p + 1]]
        out[3 * reads + j] = 0
        if g < 0:
            continue
        s = plan[p]
        cutoff = now // st[s, G] - st[s, N]
        idx = ts // st[s, G]
        if idx > cutoff:
            h = plan[p + 2]
            if h < 0:
                hi, lo = 0, 1
            elif st[s, KIND] == DISTINCT:
                hi, lo = args[h], 0
            else:
                hi, lo = args[h], args[h + 1]
            out[3 * reads + j] = _update(
                heads, slab, meta, st, ctl, dead, s, g, ts, idx, cutoff, hi, lo
            )
    for j in range(updates):
        p = at + 3 * j
        if args[plan[p + 1]] < 0:
            continue
        s = plan[p]
        cutoff = now // st[s, G] - st[s, N]
        if ts // st[s, G] > cutoff and cutoff > st[s, SWEPT]:
            st[s, SWEPT] = cutoff
            st[s, OWED] = 1
            st[s, POPPED] = 0
            st[s, DUE] = (cutoff + st[s, N] + 1) * st[s, G]
    for j in range(updates):
        p = at + 3 * j
        h = plan[p + 2]
        vid = args[h] if h >= 0 else -1
        _settle_id(heads, st, ctl, dead, plan[p], args[plan[p + 1]], vid)
    if ctl[DEAD]:
        _unlist_revived(heads, st, ctl, dead)
    return ctl[DEAD]


# --- one operation at a time: the stores' own methods (reference path, snapshots, tests) ----


@kernel
def add(heads, slab, meta, st, ctl, dead, s, g, ts, idx, cutoff, hi, lo):
    """``CountWindow.add`` after its checks: fold, then sweep at once if the cutoff passed the
    last sweep. Returns the dead ids listed, or ``NEED_SLAB``; the update's result (see
    :func:`_update`) is in ``ctl[RESULT]``."""
    if meta[-1] + _space(heads, st, s, g, 0) > len(slab):
        return NEED_SLAB
    _begin(heads, slab, meta, st, ctl, dead, 0, False)
    ctl[RESULT] = _update(heads, slab, meta, st, ctl, dead, s, g, ts, idx, cutoff, hi, lo)
    if cutoff > st[s, SWEPT]:
        _sweep(heads, slab, meta, st, ctl, dead, s, cutoff)
    _settle_id(heads, st, ctl, dead, s, g, hi)
    if ctl[DEAD]:
        _unlist_revived(heads, st, ctl, dead)
    return ctl[DEAD]


@kernel
def read(heads, slab, meta, st, s, g, cutoff, out):
    """Store ``s``'s value for id ``g`` at ``cutoff`` into ``out[0:3]`` (see :func:`_value`)."""
    out[0], out[1], out[2] = _value(heads, slab, meta, st, s, g, cutoff)


@kernel
def read_distinct(heads, slab, meta, st, ctl, dead, s, g, cutoff, out):
    """A distinct count's :func:`read` (its expired values let go); the dead ids listed."""
    _begin(heads, slab, meta, st, ctl, dead, 0, False)
    out[0], out[1], out[2] = _count(heads, slab, meta, st, ctl, dead, s, g, cutoff)
    return ctl[DEAD]


_ROWS = nb.types.Array(nb.int64, 2, "C")
_VECTOR = nb.types.Array(nb.int64, 1, "C")


@functools.cache
def reader(tables: int) -> Any:
    """The compiled entry point of :func:`read` for a pool with ``tables`` heads (padded):
    a store's own reads (the evaluator's, outside the fused step) call it directly, since
    numba's dispatcher would type its eight arguments on every call (1-2 µs)."""
    heads = nb.types.UniTuple(_ROWS, tables)
    return read.compile((heads, _VECTOR, _VECTOR, _ROWS, nb.int64, nb.int64, nb.int64, _VECTOR))


@functools.cache
def distinct_reader(tables: int) -> Any:
    """The compiled entry point of :func:`read_distinct` (see :func:`reader`)."""
    heads = nb.types.UniTuple(_ROWS, tables)
    arrays = (heads, _VECTOR, _VECTOR, _ROWS, _VECTOR, _VECTOR)
    return read_distinct.compile((*arrays, nb.int64, nb.int64, nb.int64, _VECTOR))


@kernel
def to_sketch(heads, slab, meta, st, ctl, dead, s, g, idx):
    """Distinct store ``s``'s row of id ``g`` after an update that reported 2, its owner
    having made the sketch of its values and the update's: the values let go, the row
    marked ``SKETCHED``, ``LAST`` the sketch's newest bucket. The dead ids listed."""
    _begin(heads, slab, meta, st, ctl, dead, 0, False)
    head = heads[st[s, TABLE]]
    r = g * st[s, WIDTH] + st[s, J]
    newest = max(head[r, LAST], idx)
    vt = st[s, VALUES]
    distinct.clear(head, slab, meta, heads[vt], ctl, dead, vt, r)
    head[r, SKETCHED] = 1
    head[r, LAST] = newest
    return ctl[DEAD]


@kernel
def sweep(heads, slab, meta, st, ctl, dead, s, cutoff):
    """``KeyedWindow._sweep``; the dead ids listed."""
    _begin(heads, slab, meta, st, ctl, dead, 0, False)
    _sweep(heads, slab, meta, st, ctl, dead, s, cutoff)
    return ctl[DEAD]


@kernel
def drain(heads, slab, meta, st, ctl, dead, s, limit):
    """``KeyedWindow.drain``; the number popped (the dead ids are counted in ``ctl``)."""
    _begin(heads, slab, meta, st, ctl, dead, 0, False)
    return _drain(heads, slab, meta, st, ctl, dead, s, limit)


@kernel
def clear(heads, slab, meta, st, ctl, dead, s):
    """Pop every key of store ``s``; the dead ids listed."""
    _begin(heads, slab, meta, st, ctl, dead, 0, False)
    while st[s, FRONT] >= 0:
        _drop(heads, slab, meta, st, ctl, dead, s, st[s, FRONT])
    return ctl[DEAD]


@kernel
def append(heads, st, s, g):
    """Store ``s`` takes id ``g`` at the back of its order (a restore); its row."""
    r = g * st[s, WIDTH] + st[s, J]
    _take(heads[st[s, TABLE]], st, s, r)
    return r
