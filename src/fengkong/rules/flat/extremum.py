"""Min and max windows per key id in flat arrays, for compiled kernels: the monotone queue of
:class:`fengkong.rules.windows.ExtremumWindow` in a row of :mod:`.tally`'s layout.

A key's queue is its ``(bucket, hi, lo)`` triples in its slab chunk (``[START, START +
LENGTH)``, buckets ascending), holding only the buckets whose extremum no later bucket's
equals or beats, so the oldest triple holds the window's extremum; ``FIRST`` and ``LAST`` are
the oldest and newest triples' buckets (``FAR`` and ``NEVER`` when the queue is empty).
Values are exact in two words, as amounts are (``hi * 2**62 + lo``, ``0 <= lo < 2**62``), so
comparing ``hi`` first, then ``lo``, compares the values. The operations are
``ExtremumWindow``'s, step for step (the tests compare them event by event): a read drops the
expired triples at the front; an update at or after the newest bucket drops the triples it
equals or beats from the back, then appends unless its bucket's triple beats it; a late
update beaten by a triple at or after its bucket changes nothing, else it takes its bucket's
place and drops the earlier triples it beats (the standard "ascending minima" queue; Lemire,
*Streaming maximum-minimum filter using no more than three comparisons per element*, 2006).
"""

from __future__ import annotations

from fengkong.rules.flat.jit import kernel
from fengkong.rules.flat.tally import (
    CHUNK,
    CLASS,
    FAR,
    FIRST,
    LAST,
    LENGTH,
    NEED_SPACE,
    NEVER,
    START,
    _free,
    _make_slot,
    _needs_chunk,
    _room,
)


@kernel
def _beats(lowest, a_hi, a_lo, b_hi, b_lo):
    """Whether value ``a`` equals or beats ``b`` (``<=`` for a minimum, ``>=`` for a
    maximum)."""
    if a_hi != b_hi:
        return a_hi < b_hi if lowest else a_hi > b_hi
    return a_lo <= b_lo if lowest else a_lo >= b_lo


@kernel
def _empty(head, slab, meta, i):
    """Id ``i``'s queue emptied, its chunk freed."""
    if head[i, CHUNK] >= 0:
        _free(slab, meta, head[i, CHUNK], head[i, CLASS])
    head[i, CHUNK] = -1
    head[i, START] = 0
    head[i, LENGTH] = 0
    head[i, CLASS] = 0
    head[i, FIRST] = FAR
    head[i, LAST] = NEVER


@kernel
def _ends(head, slab, i):
    """``FIRST`` and ``LAST`` from id ``i``'s triples (the queue is not empty)."""
    at = head[i, CHUNK] + 3 * head[i, START]
    head[i, FIRST] = slab[at]
    head[i, LAST] = slab[at + 3 * (head[i, LENGTH] - 1)]


@kernel
def expire(head, slab, meta, i, cutoff):
    """Drop id ``i``'s triples at or before ``cutoff`` (``_expire_queue``)."""
    if head[i, FIRST] > cutoff:
        return
    if head[i, LAST] <= cutoff:
        _empty(head, slab, meta, i)
        return
    at = head[i, CHUNK] + 3 * head[i, START]
    dropped = 0
    while slab[at + 3 * dropped] <= cutoff:
        dropped += 1
    head[i, START] += dropped
    head[i, LENGTH] -= dropped
    head[i, FIRST] = slab[at + 3 * dropped]


@kernel
def best(head, slab, i):
    """The extremum of id ``i``'s non-empty queue: ``(hi, lo)``."""
    at = head[i, CHUNK] + 3 * head[i, START]
    return slab[at + 1], slab[at + 2]


@kernel
def add(head, slab, meta, i, idx, hi, lo, lowest):
    """Fold value ``(hi, lo)`` at bucket ``idx`` (in the window; expired triples need not
    have been dropped) into id ``i``'s queue: ``ExtremumWindow.add`` past its key
    bookkeeping. ``NEED_SPACE``, with nothing changed, when the slab must grow first (for one
    more triple); else 0."""
    c = _needs_chunk(head, i)
    if c >= 0 and not _room(slab, meta, c):
        return NEED_SPACE
    if head[i, LAST] != NEVER and head[i, LAST] > idx:
        _late(head, slab, meta, i, idx, hi, lo, lowest)
        return 0
    length = head[i, LENGTH]
    if length:
        at = head[i, CHUNK] + 3 * head[i, START]
        while length:
            p = at + 3 * length  # the end of the newest triple
            if not _beats(lowest, hi, lo, slab[p - 2], slab[p - 1]):
                break
            length -= 1
        head[i, LENGTH] = length
        if length and slab[at + 3 * (length - 1)] == idx:
            return 0  # its bucket's triple beats it
    _make_slot(head, slab, meta, i)
    p = head[i, CHUNK] + 3 * (head[i, START] + head[i, LENGTH])
    slab[p] = idx
    slab[p + 1] = hi
    slab[p + 2] = lo
    head[i, LENGTH] += 1
    _ends(head, slab, i)
    return 0


@kernel
def _late(head, slab, meta, i, idx, hi, lo, lowest):
    """``ExtremumWindow._insert``: a value at bucket ``idx``, older than the newest."""
    at = head[i, CHUNK] + 3 * head[i, START]
    j = 0
    while slab[at + 3 * j] < idx:
        j += 1
    p = at + 3 * j
    if _beats(lowest, slab[p + 1], slab[p + 2], hi, lo):
        return  # a triple at or after idx equals or beats it (the values are monotone)
    if slab[p] != idx:
        _make_slot(head, slab, meta, i)  # may move the run
        at = head[i, CHUNK] + 3 * head[i, START]
        for k in range(3 * head[i, LENGTH] - 1, 3 * j - 1, -1):
            slab[at + k + 3] = slab[at + k]
        head[i, LENGTH] += 1
        p = at + 3 * j
        slab[p] = idx
    slab[p + 1] = hi
    slab[p + 2] = lo
    start = j
    while start and _beats(lowest, hi, lo, slab[at + 3 * start - 2], slab[at + 3 * start - 1]):
        start -= 1
    gone = j - start
    if gone:
        for k in range(3 * start, 3 * (head[i, LENGTH] - gone)):
            slab[at + k] = slab[at + k + 3 * gone]
        head[i, LENGTH] -= gone
    _ends(head, slab, i)


def pairs(head, slab, i) -> list[tuple[int, int, int]]:
    """Id ``i``'s queue as ``(bucket, hi, lo)``, oldest first (snapshots; Python)."""
    if int(head[i, LAST]) == NEVER:
        return []
    at = int(head[i, CHUNK]) + 3 * int(head[i, START])
    run = slab[at : at + 3 * int(head[i, LENGTH])].tolist()
    return [(run[k], run[k + 1], run[k + 2]) for k in range(0, len(run), 3)]
