"""The flat count / sum state against ``windows._Tally`` and its helpers, operation by
operation (late events, expiry, exact amounts of any size), and the slab's chunk reuse."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.rules.flat import tally
from fengkong.rules.windows import (
    _FAR,
    _NEVER,
    _expire_tally,
    _insert_tally,
    _push_tally,
    _Tally,
)

N = 8  # buckets in the window
IDS = 3

# (id, time step, bucket offset back from now (late events), amount); amounts up to 2**100
operations = st.lists(
    st.tuples(
        st.integers(0, IDS - 1),
        st.integers(0, 3),
        st.integers(0, 9),
        st.integers(-(2**100), 2**100) | st.integers(-3, 3),
        st.booleans(),
    ),
    min_size=1,
    max_size=80,
)


def reference_add(state: _Tally | None, idx: int, amount: int) -> _Tally:
    """``CountWindow._fold`` on one key's state, key-table bookkeeping left out."""
    if state is None:
        return _Tally(0 + amount, idx, idx, amount)
    last = state.last
    if last == idx:
        state.amount += amount
    elif last > idx:
        _insert_tally(state, idx, amount)
    else:  # a newer bucket, or the first of an emptied key
        _push_tally(state, idx, amount)
    state.total += amount
    return state


def reference_pairs(state: _Tally | None) -> list[list[int]]:
    if state is None:
        return []
    pairs = [[b, a] for b, a in (state.older or {}).items()]
    if state.last != _NEVER:
        pairs.append([state.last, state.amount])
    return pairs


def add(arrays, i: int, idx: int, amount: int) -> list:
    head, slab, meta = arrays
    hi, lo = tally.split(amount)
    while tally.add(head, slab, meta, i, idx, hi, lo) == tally.NEED_SPACE:
        slab = tally.grown(slab)
    return [head, slab, meta]


@settings(max_examples=400, deadline=None)
@given(operations)
def test_matches_the_python_tally_after_every_operation(ops):
    arrays = [tally.empty_rows(IDS), *tally.new_slab(3)]
    states: list[_Tally | None] = [None] * IDS
    now = 100
    for i, step, back, amount, read in ops:
        now += step
        cutoff = now - N
        idx = now - back
        if read:  # as a decision does: read the key, then fold the event in
            head, slab, meta = arrays
            state = states[i]
            if state is not None and state.first <= cutoff:
                _expire_tally(state, cutoff)
            tally.expire(head, slab, meta, i, cutoff)
        if idx > cutoff:
            states[i] = reference_add(states[i], idx, amount)
            arrays = add(arrays, i, idx, amount)
        head, slab, _ = arrays
        for j in range(IDS):
            state = states[j]
            assert tally.buckets(head, slab, j) == reference_pairs(state)
            assert tally.total(head, j) == (0 if state is None else state.total)
            assert head[j, tally.FIRST] == (_FAR if state is None else state.first)
            assert head[j, tally.LAST] == (_NEVER if state is None else state.last)


def test_an_expired_key_frees_its_chunk_for_the_next():
    head, (slab, meta) = tally.empty_rows(2), tally.new_slab(3 * 64)
    for idx in range(1, 6):  # five buckets: four older, in a chunk of class 2
        assert tally.add(head, slab, meta, 0, idx, 0, 1) == 0
    assert head[0, tally.CLASS] == 2
    carved = meta[-1]
    tally.expire(head, slab, meta, 0, 10)
    assert head[0, tally.CHUNK] == -1 and tally.total(head, 0) == 0
    for idx in range(1, 6):
        assert tally.add(head, slab, meta, 1, idx, 0, 1) == 0
    assert meta[-1] == carved  # the second key reused the freed chunks
    assert tally.buckets(head, slab, 1) == [[b, 1] for b in range(1, 6)]


def test_a_full_slab_changes_nothing_and_asks_for_room():
    head, (slab, meta) = tally.empty_rows(1), tally.new_slab(3)
    assert tally.add(head, slab, meta, 0, 1, 0, 5) == 0
    assert tally.add(head, slab, meta, 0, 2, 0, 5) == 0  # bucket 1 fills the class-0 chunk
    before = (head.copy(), slab.copy(), meta.copy())
    assert tally.add(head, slab, meta, 0, 3, 0, 5) == tally.NEED_SPACE
    assert all((a == b).all() for a, b in zip(before, (head, slab, meta), strict=True))
    slab = tally.grown(tally.grown(slab))
    assert tally.add(head, slab, meta, 0, 3, 0, 5) == 0
    assert tally.buckets(head, slab, 0) == [[1, 5], [2, 5], [3, 5]]


def test_a_run_that_reaches_its_chunk_end_moves_to_the_front():
    head, (slab, meta) = tally.empty_rows(1), tally.new_slab(3 * 16)
    for idx in (1, 2, 3):  # buckets 1 and 2 older, in a chunk of class 1
        assert tally.add(head, slab, meta, 0, idx, 0, 1) == 0
    tally.expire(head, slab, meta, 0, 1)  # bucket 1 leaves the chunk's front
    assert head[0, tally.START] == 1 and head[0, tally.CLASS] == 1
    assert tally.add(head, slab, meta, 0, 4, 0, 1) == 0  # bucket 3 joins: compacted, same class
    assert head[0, tally.START] == 0 and head[0, tally.CLASS] == 1
    assert tally.buckets(head, slab, 0) == [[2, 1], [3, 1], [4, 1]]
    assert tally.total(head, 0) == 3
