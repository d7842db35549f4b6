"""The flat count and sum stores against ``CountWindow`` and ``SumWindow``, event by event:
the same reads, the same keys in the same update order, the same canonical state, through
late events, owed sweeps drained a few keys at a time, ``max_keys`` evictions and restores."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.rules.flat.pool import FlatPool
from fengkong.rules.flat.windows import FlatCountWindow, FlatSumWindow
from fengkong.rules.windows import CountWindow, SumWindow

G, N, MAX_KEYS = 10, 6, 4

# (key, time step, lateness, value, then: 0 nothing, 1 read, 2 defer + drain, 3 state, 4 restore)
events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e", "f"]),
        st.integers(0, 25),
        st.integers(0, 70),
        st.integers(-(2**90), 2**90) | st.integers(1, 9),
        st.integers(0, 4),
    ),
    min_size=1,
    max_size=120,
)


@pytest.mark.parametrize(
    ("python", "flat", "scale"),
    [
        (CountWindow, FlatCountWindow, 1),
        (SumWindow, FlatSumWindow, 1),
        (SumWindow, FlatSumWindow, 10**18),
    ],
    ids=["count", "sum", "decimal-sum"],
)
@settings(max_examples=300, deadline=None)
@given(stream=events)
def test_the_flat_store_decides_and_keeps_what_the_python_store_does(python, flat, scale, stream):
    reference = python(G, N, MAX_KEYS, scale)
    pool = FlatPool()
    store = flat(G, N, MAX_KEYS, scale, pool)
    now = 1_000
    for key, step, late, value, then in stream:
        now += step
        ts = now - late
        reference.add(key, value, ts, now)
        store.add(key, value, ts, now)
        assert list(store.keys) == list(reference.keys)
        if then == 1:
            for probe in "abcdef":
                assert store.read(probe, now) == reference.read(probe, now)
        elif then == 2:
            cutoff = now // G - N
            reference.defer(cutoff)
            store.defer(cutoff)
            assert store.drain(2) == reference.drain(2)
        elif then == 3:
            assert store.state() == reference.state()
        elif then == 4:
            snapshot = reference.state()
            store.restore(snapshot)
            assert store.state() == snapshot
        assert list(store.keys) == list(reference.keys)
    assert store.state() == reference.state()
    assert len(store.table.ids) == len(store)  # an id lives while the store holds its key
