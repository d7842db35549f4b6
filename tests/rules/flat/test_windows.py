"""The flat count, sum, min, max and last-value stores against ``CountWindow``,
``SumWindow``, ``ExtremumWindow`` and ``LastWindow``, event by event: the same reads, the
same keys in the same update order, the same canonical state, through late events, owed
sweeps drained a few keys at a time, ``max_keys`` evictions and restores."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.rules.flat import tally
from fengkong.rules.flat.pool import FlatPool
from fengkong.rules.flat.windows import (
    FlatCountWindow,
    FlatDistinctWindow,
    FlatExtremumWindow,
    FlatLastWindow,
    FlatSumWindow,
)
from fengkong.rules.windows import (
    CountWindow,
    DistinctWindow,
    ExtremumWindow,
    LastWindow,
    SumWindow,
)

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


def _extremum(pick, scale):
    """An ``ExtremumWindow`` and a ``FlatExtremumWindow`` factory (default -1)."""
    return (
        lambda: ExtremumWindow(G, N, MAX_KEYS, scale, pick, -1),
        lambda pool: FlatExtremumWindow(G, N, MAX_KEYS, scale, pick, -1, pool),
    )


@pytest.mark.parametrize(
    ("python", "flat"),
    [
        (lambda: CountWindow(G, N, MAX_KEYS, 1), lambda p: FlatCountWindow(G, N, MAX_KEYS, 1, p)),
        (lambda: SumWindow(G, N, MAX_KEYS, 1), lambda p: FlatSumWindow(G, N, MAX_KEYS, 1, p)),
        (
            lambda: SumWindow(G, N, MAX_KEYS, 10**18),
            lambda p: FlatSumWindow(G, N, MAX_KEYS, 10**18, p),
        ),
        _extremum(min, 1),
        _extremum(max, 1),
        _extremum(max, 10**18),
        (
            lambda: LastWindow(G, N, MAX_KEYS, 1, -1),
            lambda p: FlatLastWindow(G, N, MAX_KEYS, 1, -1, p),
        ),
    ],
    ids=["count", "sum", "decimal-sum", "min", "max", "decimal-max", "last"],
)
@pytest.mark.parametrize("slab_words", [3 * 1024, 3], ids=["slab", "tiny-slab"])
@settings(max_examples=300, deadline=None)
@given(stream=events)
def test_the_flat_store_decides_and_keeps_what_the_python_store_does(
    python, flat, slab_words, stream
):
    reference = python()
    pool = FlatPool()
    pool.slab, pool.meta = tally.new_slab(slab_words)  # tiny: every other update grows it
    store = flat(pool)
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


def test_thousands_of_keys_grow_the_table_and_slab_and_reuse_ids_as_the_python_store_does():
    """Past the first ids (64) and the first rows made empty (1,024 at a time), through table
    and slab doublings, with keys expiring and their ids taken again."""
    g, n = 100, 60
    reference = SumWindow(g, n, 10**9, 1)
    pool = FlatPool()
    store = FlatSumWindow(g, n, 10**9, 1, pool)
    now = 1_000
    for i in range(14_000):
        now += 1 if i % 4 else 0
        key = f"k{i % 2_500}" if i < 4_000 else f"n{i}"
        for ts in (now, now - 150):
            reference.add(key, i, ts, now)
            store.add(key, i, ts, now)
        if i % 1_000 == 0:
            assert store.state() == reference.state()
            assert store.read(key, now) == reference.read(key, now)
    probes = [f"k{i}" for i in range(2_500)] + [f"n{i}" for i in range(4_000, 14_000)]
    assert [store.read(k, now) for k in probes] == [reference.read(k, now) for k in probes]
    assert store.state() == reference.state()
    assert len(store.table.key_of) >= 8_192  # doubled past the 1,024-id blocks
    assert len(store.table.ids) == len(store) < 10_000  # expired keys' ids let go


def test_a_closed_last_value_store_leaves_the_others_values_kept_in_step():
    """Closing a store detaches its own values (by identity: an empty dict equals another
    store's empty dict); a key id's values still leave every other store with the id."""
    pool = FlatPool()
    one = FlatLastWindow(G, N, MAX_KEYS, 1, -1, pool)
    two = FlatLastWindow(G, N, MAX_KEYS, 1, -1, pool)
    assert one.table is two.table and one.values == two.values == {}
    two.close()
    assert [v is one.values for v in one.table.last_values] == [True]
    one.add("a", 7, 1_000, 1_000)
    assert one.read("a", 1_000) == 7 and len(one.values) == 1
    one.add("b", 8, 1_000 + G * (N + 1), 1_000 + G * (N + 1))  # "a" expires and is swept
    assert list(one.keys) == ["b"] and list(one.values) == [one.table.ids["b"]]


# (key, time step, lateness, value, then: as for ``events``)
distinct_events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e", "f"]),
        st.integers(0, 25),
        st.integers(0, 70),
        st.sampled_from(["p", "q", "r", "s", "t", "u", "v", "w"]),
        st.integers(0, 4),
    ),
    min_size=1,
    max_size=120,
)


@pytest.mark.parametrize("exact_limit", [2, 4, 1_000], ids=["limit-2", "limit-4", "exact"])
@pytest.mark.parametrize("slab_words", [3 * 1024, 3], ids=["slab", "tiny-slab"])
@settings(max_examples=300, deadline=None)
@given(stream=distinct_events)
def test_flat_distinct_stores_decide_and_keep_what_the_python_store_does(
    exact_limit, slab_words, stream
):
    """Two distinct stores of one pool (two windows, sharing the value table) against two
    ``DistinctWindow``: exact sets, sets past ``exact_limit`` made sketches (and a sketch
    in a row a sweep or eviction lets go), reads, state and restores; a value's id lives
    while a set holds the value."""
    shapes = [(G, N, MAX_KEYS), (2 * G, N // 2, MAX_KEYS + 1)]
    references = [DistinctWindow(g, n, keys, exact_limit) for g, n, keys in shapes]
    pool = FlatPool()
    pool.slab, pool.meta = tally.new_slab(slab_words)
    stores = [FlatDistinctWindow(g, n, keys, exact_limit, 1, pool) for g, n, keys in shapes]
    now = 1_000
    for key, step, late, value, then in stream:
        now += step
        ts = now - late
        for reference, store in zip(references, stores, strict=True):
            reference.add(key, value, ts, now)
            store.add(key, value, ts, now)
            assert list(store.keys) == list(reference.keys)
            if then == 1:
                for probe in "abcdef":
                    assert store.read(probe, now) == reference.read(probe, now)
            elif then == 3:
                assert store.state() == reference.state()
            elif then == 4:
                snapshot = reference.state()
                store.restore(snapshot)
                assert store.state() == snapshot
            assert list(store.keys) == list(reference.keys)
        held = set()
        for store in stores:
            assert len(store.sketches) == sum(
                "sketch" in key_state for _, key_state in store.state()["keys"]
            )
            for _, key_state in store.state()["keys"]:
                held.update(v for _, members in key_state.get("exact", []) for v in members)
        assert set(stores[0].values.ids) == held
    for reference, store in zip(references, stores, strict=True):
        assert store.state() == reference.state()


def test_a_sketch_a_read_emptied_moves_the_key_as_the_python_store_does():
    """A key in sketch mode whose every bucket a read evicted has no newest bucket: its
    next update moves it to the back even within the span of its old newest bucket (the
    row's ``LAST`` follows the sketch)."""
    reference = DistinctWindow(G, N, MAX_KEYS, 2)
    store = FlatDistinctWindow(G, N, MAX_KEYS, 2, 1, FlatPool())
    for window in (reference, store):
        window.add("b", "p", 1_020, 1_020)  # bucket 102, in span 34 (N // 2 = 3)
        for value in "pqr":  # past the limit of 2: a sketch, newest bucket 103
            window.add("a", value, 1_030, 1_030)
        window.add("b", "p", 1_040, 1_040)  # bucket 104, same span: b stays in front
        window.add("c", "p", 1_040, 1_040)
        assert window.read("a", 1_090) == 0  # cutoff 103: the sketch is empty
        window.add("a", "s", 1_040, 1_090)  # bucket 104: moves, as a key with no bucket
    assert list(store.keys) == list(reference.keys) == ["b", "c", "a"]
    assert store.state() == reference.state()
