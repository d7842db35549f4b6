"""Distinct counts per key id in flat arrays, exact mode, for compiled kernels: the value set
of :class:`fengkong.rules.windows.DistinctWindow` in a row of :mod:`.tally`'s layout
(``docs/design/compiled-stores.md``, *Next: distinct counts in the kernel*).

A key's set is its ``(bucket, value id, 0)`` triples in its slab chunk, in the order the
reference keeps its dict: by bucket, a value seen again in a newer bucket moved to the end, a
late value after the values of its bucket and before newer ones (the reference's stable
sort). ``FIRST`` and ``LAST`` are the first and last triples' buckets (``FAR`` and ``NEVER``
when the set is empty). Values are ids of value table ``vt`` whose rows (``values``, one
column) count the sets holding each id (:mod:`.ids`: an id no set holds is listed dead).
Sketch mode (past ``exact_limit``) is the owner's (:mod:`.keyed`).
"""

from __future__ import annotations

from fengkong.rules.flat.extremum import _ends
from fengkong.rules.flat.ids import ref, unref
from fengkong.rules.flat.jit import kernel
from fengkong.rules.flat.tally import (
    CHUNK,
    FIRST,
    LAST,
    LENGTH,
    NEED_SPACE,
    NEVER,
    START,
    _make_slot,
    _needs_chunk,
    _room,
    release,
)


@kernel
def evict(head, slab, meta, values, ctl, dead, vt, i, cutoff):
    """Drop id ``i``'s values whose newest bucket is at or before ``cutoff`` (the leading
    triples; ``_evict_exact``), each one's reference count down."""
    if head[i, FIRST] > cutoff:
        return
    at = head[i, CHUNK] + 3 * head[i, START]
    length = head[i, LENGTH]
    dropped = 0
    while dropped < length and slab[at + 3 * dropped] <= cutoff:
        unref(values, ctl, dead, vt, slab[at + 3 * dropped + 1])
        dropped += 1
    if dropped == length:
        release(head, slab, meta, i)
        return
    head[i, START] += dropped
    head[i, LENGTH] -= dropped
    head[i, FIRST] = slab[at + 3 * dropped]


@kernel
def find(head, slab, i, vid):
    """The place of value ``vid`` among id ``i``'s triples, or -1."""
    at = head[i, CHUNK] + 3 * head[i, START]
    for k in range(head[i, LENGTH]):
        if slab[at + 3 * k + 1] == vid:
            return k
    return -1


@kernel
def add(head, slab, meta, values, i, idx, vid):
    """Fold value ``vid`` seen at bucket ``idx`` (in the window) into id ``i``'s set
    (``DistinctWindow._add_exact`` without its switch to a sketch): a value already there at
    ``idx`` or later changes nothing; one there at an older bucket moves to the place of
    ``idx``; a new one takes a reference. ``NEED_SPACE``, with nothing changed, when the slab
    must grow first; else 0."""
    k = find(head, slab, i, vid) if head[i, LENGTH] else -1
    at = head[i, CHUNK] + 3 * head[i, START]
    if k >= 0:
        if slab[at + 3 * k] >= idx:
            return 0
        length = head[i, LENGTH]
        for m in range(3 * k, 3 * (length - 1)):
            slab[at + m] = slab[at + m + 3]
        head[i, LENGTH] = length - 1
    else:
        c = _needs_chunk(head, i)
        if c >= 0 and not _room(slab, meta, c):
            return NEED_SPACE
        ref(values, vid)
        _make_slot(head, slab, meta, i)  # may move the run
        at = head[i, CHUNK] + 3 * head[i, START]
    length = head[i, LENGTH]
    place = length
    while place and slab[at + 3 * (place - 1)] > idx:  # a late value: after its bucket's
        place -= 1
    for m in range(3 * length - 1, 3 * place - 1, -1):
        slab[at + m + 3] = slab[at + m]
    p = at + 3 * place
    slab[p] = idx
    slab[p + 1] = vid
    slab[p + 2] = 0
    head[i, LENGTH] = length + 1
    _ends(head, slab, i)
    return 0


@kernel
def clear(head, slab, meta, values, ctl, dead, vt, i):
    """Drop every value of id ``i`` (each one's reference count down) and empty its row."""
    at = head[i, CHUNK] + 3 * head[i, START]
    for k in range(head[i, LENGTH]):
        unref(values, ctl, dead, vt, slab[at + 3 * k + 1])
    release(head, slab, meta, i)


def members(head, slab, i) -> list[tuple[int, int]]:
    """Id ``i``'s set as ``(value id, bucket)``, in order (snapshots; Python)."""
    if int(head[i, LAST]) == NEVER:
        return []
    at = int(head[i, CHUNK]) + 3 * int(head[i, START])
    run = slab[at : at + 3 * int(head[i, LENGTH])].tolist()
    return [(run[k + 1], run[k]) for k in range(0, len(run), 3)]
