"""The flat min / max queue against ``ExtremumWindow``'s own queue operations, operation by
operation: updates at the newest bucket, late updates, expiry, equal values, exact values of
any size and sign, and the slab growing under them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.rules.flat import extremum, tally
from fengkong.rules.windows import (
    _FAR,
    _NEVER,
    ExtremumWindow,
    _append_queue,
    _expire_queue,
    _pop_newest,
    _Queue,
    _queue_flat,
)

IDS = 3

# (id, time step, bucket offset back from now (late), value, then expire at now - 6)
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


def reference_add(window: ExtremumWindow, state: _Queue, idx: int, value: int) -> None:
    """``ExtremumWindow.add`` on one key's queue, key-table bookkeeping left out."""
    if state.last != _NEVER and state.last > idx:
        window._insert(state, idx, value)
        return
    while state.last != _NEVER and window._beats(value, state.worst):
        _pop_newest(state)
    _append_queue(state, idx, value)


@pytest.mark.parametrize("pick", [min, max], ids=["min", "max"])
@settings(max_examples=300, deadline=None)
@given(ops=operations)
def test_matches_the_python_queue_after_every_operation(pick, ops):
    window = ExtremumWindow(1, 8, 10, 1, pick, None)
    lowest = pick is min
    states = [_Queue(_FAR, _NEVER, None, None) for _ in range(IDS)]
    head = tally.empty_rows(IDS)
    slab, meta = tally.new_slab(3)  # one triple: every second one grows the slab
    now = 100
    for i, step, late, value, expire in ops:
        now += step
        idx = now - late
        reference_add(window, states[i], idx, value)
        hi, lo = tally.split(value)
        while extremum.add(head, slab, meta, i, idx, hi, lo, lowest) == tally.NEED_SPACE:
            slab = tally.grown(slab)
        if expire:
            cutoff = now - 6
            if states[i].first <= cutoff:
                _expire_queue(states[i], cutoff)
            extremum.expire(head, slab, meta, i, cutoff)
        for j in range(IDS):
            flat = _queue_flat(states[j])
            got = [(b, tally.joined(h, lo)) for b, h, lo in extremum.pairs(head, slab, j)]
            assert got == list(zip(flat[::2], flat[1::2], strict=True)), (j, now)
            assert (int(head[j, tally.FIRST]), int(head[j, tally.LAST])) == (
                states[j].first,
                states[j].last,
            )
            if got:
                assert tally.joined(*extremum.best(head, slab, j)) == states[j].best


def test_an_emptied_queue_frees_its_chunk_for_the_next_key():
    head = tally.empty_rows(2)
    slab, meta = tally.new_slab(3 * 16)
    for idx, value in ((1, 5), (2, 3), (3, 1)):  # a falling max: three triples
        assert extremum.add(head, slab, meta, 0, idx, 0, value, False) == 0
    assert [v for _, _, v in extremum.pairs(head, slab, 0)] == [5, 3, 1]
    carved = int(meta[-1])
    extremum.expire(head, slab, meta, 0, 3)
    assert int(head[0, tally.CHUNK]) == -1 and extremum.pairs(head, slab, 0) == []
    assert extremum.add(head, slab, meta, 1, 9, 0, 7, False) == 0
    assert int(meta[-1]) == carved  # the new key's chunk came from the free lists
