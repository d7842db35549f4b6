"""Count and sum windows per key id in flat arrays, for compiled kernels
(``docs/design/compiled-stores.md``).

The same state and operations as :class:`fengkong.rules.windows._Tally` and its helpers
(``_push_tally``, ``_insert_tally``, ``_expire_tally``), kept in ``int64`` arrays that numba
kernels read and write:

* ``head[i]``, one row per key id: the oldest and newest live buckets, the total and the newest
  bucket's amount (each as two words), and where the older buckets are;
* ``slab``: the older buckets of every id, ``(bucket, hi, lo)`` triples in ascending bucket
  order, in chunks of ``2**c`` triples (class ``c``, 0 to ``MAX_CLASS``); a key's triples
  occupy ``[start, start + length)`` of its chunk, expired ones leave from the front, a new one
  is appended (the chunk is compacted, or moved to the next class, when its end is reached);
* ``meta``: the first free chunk of each class (``-1``: none; a free chunk's first word links
  to the next) and, last, the end of the carved part of ``slab``.

Amounts are exact: ``hi * 2**62 + lo`` with ``0 <= lo < 2**62`` and ``hi`` signed (Python's
``divmod(amount, 2**62)``), so sums of 1e-18 units stay exact up to about 2**125 units
(4e19 in whole units). Adding two ``lo`` words cannot overflow 64 bits.

A kernel that would need a chunk the slab has no room for changes nothing and returns
``NEED_SPACE``; the owner grows the slab (:func:`grown`) and calls it again.
"""

from __future__ import annotations

import numpy as np

from fengkong.rules.flat.jit import kernel

NEVER = -(2**62)  # the newest bucket of an id with no live bucket (windows._NEVER)
FAR = 2**62  # the oldest bucket of an id with no live bucket (windows._FAR)
BASE = 2**62  # amounts are hi * BASE + lo
MAX_CLASS = 14  # 16,384 triples: more than the 10,000 buckets a window may have
NEED_SPACE = 1

# columns of ``head`` (an owner may add its own after them: see :mod:`.keyed`)
FIRST, LAST, TOTAL_HI, TOTAL_LO, NEWEST_HI, NEWEST_LO, CHUNK, START, LENGTH, CLASS = range(10)
TALLY_WIDTH = 10


def empty_rows(rows: int, width: int = TALLY_WIDTH) -> np.ndarray:
    """``rows`` empty rows of ``width`` columns (those after the tally's are 0)."""
    head = np.zeros((rows, width), np.int64)
    make_empty(head)
    return head


def make_empty(rows: np.ndarray) -> None:
    """Make zeroed ``rows`` empty rows."""
    rows[:, FIRST] = FAR
    rows[:, LAST] = NEVER
    rows[:, CHUNK] = -1


def new_slab(words: int = 3 * 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(slab, meta)``: a slab of ``words`` with no chunk carved."""
    meta = np.full(MAX_CLASS + 2, -1, np.int64)
    meta[-1] = 0
    return np.zeros(words, np.int64), meta


def grown(slab: np.ndarray) -> np.ndarray:
    """``slab`` with twice the words (chunk offsets are unchanged). The new half is zero
    pages the system hands over as they are first written, not all at once: a copy of a
    24 MB slab into a fresh 48 MB array took 56 ms here (``np.concatenate``), the copy
    alone 3 ms, and the growing call is a decision."""
    out = np.zeros(2 * len(slab), np.int64)
    out[: len(slab)] = slab
    return out


def split(amount: int) -> tuple[int, int]:
    """``(hi, lo)`` of an exact amount."""
    return divmod(amount, BASE)


def joined(hi: int, lo: int) -> int:
    return hi * BASE + lo


@kernel
def _room(slab, meta, c):
    """Whether a chunk of class ``c`` can be had without growing ``slab``."""
    return meta[c] >= 0 or meta[-1] + 3 * (1 << c) <= len(slab)


@kernel
def _alloc(slab, meta, c):
    """A chunk of class ``c`` (the caller checked :func:`_room`)."""
    offset = meta[c]
    if offset >= 0:
        meta[c] = slab[offset]
        return offset
    offset = meta[-1]
    meta[-1] = offset + 3 * (1 << c)
    return offset


@kernel
def _free(slab, meta, offset, c):
    slab[offset] = meta[c]
    meta[c] = offset


@kernel
def _add_words(hi, lo, a_hi, a_lo):
    lo += a_lo
    hi += a_hi
    if lo >= BASE:
        lo -= BASE
        hi += 1
    return hi, lo


@kernel
def _sub_words(hi, lo, a_hi, a_lo):
    lo -= a_lo
    hi -= a_hi
    if lo < 0:
        lo += BASE
        hi -= 1
    return hi, lo


@kernel
def _needs_chunk(head, i):
    """The class of the chunk one more older triple of id ``i`` needs, or -1 if it fits."""
    chunk = head[i, CHUNK]
    if chunk < 0:
        return 0
    if head[i, START] + head[i, LENGTH] < (1 << head[i, CLASS]):
        return -1
    if head[i, START] > 0:
        return -1  # compacting makes room
    return head[i, CLASS] + 1


@kernel
def _make_slot(head, slab, meta, i):
    """Room for one more triple at the end of id ``i``'s run (space checked by the caller):
    a first chunk, the run moved to the chunk's front, or the run moved to a chunk twice as
    large."""
    chunk = head[i, CHUNK]
    if chunk < 0:
        head[i, CHUNK] = _alloc(slab, meta, 0)
        head[i, START] = 0
        head[i, LENGTH] = 0
        head[i, CLASS] = 0
        return
    start = head[i, START]
    length = head[i, LENGTH]
    c = head[i, CLASS]
    if start + length < (1 << c):
        return
    if start > 0:
        for j in range(3 * length):
            slab[chunk + j] = slab[chunk + 3 * start + j]
        head[i, START] = 0
        return
    bigger = _alloc(slab, meta, c + 1)
    for j in range(3 * length):
        slab[bigger + j] = slab[chunk + j]
    _free(slab, meta, chunk, c)
    head[i, CHUNK] = bigger
    head[i, CLASS] = c + 1


@kernel
def add(head, slab, meta, i, idx, a_hi, a_lo):
    """Fold amount ``(a_hi, a_lo)`` into bucket ``idx`` of id ``i`` (the bucket is in the
    window; expired buckets need not have been dropped). ``NEED_SPACE``, with nothing
    changed, when the slab must grow first; else 0."""
    last = head[i, LAST]
    if last != NEVER and idx != last:
        c = _needs_chunk(head, i)
        if idx < last:  # a late event needs a slot only for a bucket not held yet
            chunk = head[i, CHUNK]
            at = chunk + 3 * head[i, START]
            for j in range(head[i, LENGTH]):
                if slab[at + 3 * j] == idx:
                    c = -1
                    break
        if c >= 0 and not _room(slab, meta, c):
            return NEED_SPACE
    head[i, TOTAL_HI], head[i, TOTAL_LO] = _add_words(
        head[i, TOTAL_HI], head[i, TOTAL_LO], a_hi, a_lo
    )
    if last == NEVER:
        head[i, FIRST] = idx
        head[i, LAST] = idx
        head[i, NEWEST_HI] = a_hi
        head[i, NEWEST_LO] = a_lo
    elif idx == last:
        head[i, NEWEST_HI], head[i, NEWEST_LO] = _add_words(
            head[i, NEWEST_HI], head[i, NEWEST_LO], a_hi, a_lo
        )
    elif idx > last:  # the newest bucket joins the older ones
        _make_slot(head, slab, meta, i)
        at = head[i, CHUNK] + 3 * (head[i, START] + head[i, LENGTH])
        slab[at] = last
        slab[at + 1] = head[i, NEWEST_HI]
        slab[at + 2] = head[i, NEWEST_LO]
        head[i, LENGTH] += 1
        head[i, LAST] = idx
        head[i, NEWEST_HI] = a_hi
        head[i, NEWEST_LO] = a_lo
    else:
        _insert(head, slab, meta, i, idx, a_hi, a_lo)
    return 0


@kernel
def _insert(head, slab, meta, i, idx, a_hi, a_lo):
    """A late event: fold into older bucket ``idx``, inserted in bucket order if new."""
    if head[i, CHUNK] >= 0:
        at = head[i, CHUNK] + 3 * head[i, START]
        length = head[i, LENGTH]
        for j in range(length):
            p = at + 3 * j
            if slab[p] == idx:
                slab[p + 1], slab[p + 2] = _add_words(slab[p + 1], slab[p + 2], a_hi, a_lo)
                return
    _make_slot(head, slab, meta, i)
    at = head[i, CHUNK] + 3 * head[i, START]
    j = head[i, LENGTH]
    while j > 0 and slab[at + 3 * (j - 1)] > idx:
        p = at + 3 * j
        slab[p] = slab[p - 3]
        slab[p + 1] = slab[p - 2]
        slab[p + 2] = slab[p - 1]
        j -= 1
    p = at + 3 * j
    slab[p] = idx
    slab[p + 1] = a_hi
    slab[p + 2] = a_lo
    head[i, LENGTH] += 1
    if idx < head[i, FIRST]:
        head[i, FIRST] = idx


@kernel
def expire(head, slab, meta, i, cutoff):
    """Drop id ``i``'s buckets at or before ``cutoff`` (the leading ones), subtracting each
    from the total; an id whose every bucket expired is left empty (total 0, ``FIRST`` far,
    ``LAST`` never), its chunk freed."""
    if head[i, FIRST] > cutoff:
        return
    hi = head[i, TOTAL_HI]
    lo = head[i, TOTAL_LO]
    first = head[i, LAST]
    chunk = head[i, CHUNK]
    if chunk >= 0:
        start = head[i, START]
        length = head[i, LENGTH]
        while length > 0:
            p = chunk + 3 * start
            if slab[p] > cutoff:
                first = slab[p]
                break
            hi, lo = _sub_words(hi, lo, slab[p + 1], slab[p + 2])
            start += 1
            length -= 1
        if length == 0:
            _free(slab, meta, chunk, head[i, CLASS])
            head[i, CHUNK] = -1
            start = 0
        head[i, START] = start
        head[i, LENGTH] = length
    if first <= cutoff:  # the newest bucket too
        hi, lo = _sub_words(hi, lo, head[i, NEWEST_HI], head[i, NEWEST_LO])
        head[i, LAST] = NEVER
        head[i, NEWEST_HI] = 0
        head[i, NEWEST_LO] = 0
        first = FAR
    head[i, FIRST] = first
    head[i, TOTAL_HI] = hi
    head[i, TOTAL_LO] = lo


def buckets(head: np.ndarray, slab: np.ndarray, i: int) -> list[list[int]]:
    """Id ``i``'s ``[bucket, amount]`` pairs, ascending (``CountWindow``'s state form)."""
    pairs = []
    chunk = int(head[i, CHUNK])
    if chunk >= 0:
        at = chunk + 3 * int(head[i, START])
        for j in range(int(head[i, LENGTH])):
            p = at + 3 * j
            pairs.append([int(slab[p]), joined(int(slab[p + 1]), int(slab[p + 2]))])
    if head[i, LAST] != NEVER:
        pairs.append([int(head[i, LAST]), joined(int(head[i, NEWEST_HI]), int(head[i, NEWEST_LO]))])
    return pairs


def total(head: np.ndarray, i: int) -> int:
    return joined(int(head[i, TOTAL_HI]), int(head[i, TOTAL_LO]))


@kernel
def release(head, slab, meta, i):
    """Empty id ``i`` for reuse, its chunk freed."""
    if head[i, CHUNK] >= 0:
        _free(slab, meta, head[i, CHUNK], head[i, CLASS])
    head[i, FIRST] = FAR
    head[i, LAST] = NEVER
    head[i, CHUNK] = -1
    for column in (TOTAL_HI, TOTAL_LO, NEWEST_HI, NEWEST_LO, START, LENGTH, CLASS):
        head[i, column] = 0
