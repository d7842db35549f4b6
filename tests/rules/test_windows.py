"""The min / max store's monotone queue against a brute-force reference (late events
included), its invariant, and its snapshot form; every store's keys and states untracked by
the cycle collector."""

from __future__ import annotations

import gc
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.rules.component import RulesComponent
from fengkong.rules.events import RulePackLoaded
from fengkong.rules.windows import _SKETCHED, ExtremumWindow, _Queue, _queue_flat, _Tally
from tests.rules.kit import T0, pack_text, rule
from tests.rules.test_features import FEATURES, build_events, steps

N = 6  # buckets of width 1 in the window

# (time step, value): negative steps make late events
adds = st.lists(st.tuples(st.integers(-4, 3), st.integers(-5, 5)), min_size=1, max_size=60)


def store(pick) -> ExtremumWindow:
    return ExtremumWindow(1, N, 100, 1, pick, None)


def monotone(state: list, pick) -> bool:
    """Buckets strictly ascending, values strictly rising (min) or falling (max)."""
    buckets, values = state[::2], state[1::2]
    ascending = all(a < b for a, b in pairwise(buckets))
    improving = values == sorted(values, reverse=pick is max) and len(set(values)) == len(values)
    return ascending and improving


def replay(window: ExtremumWindow, steps: list):
    """Feed ``steps`` to ``window``; after each add: the event's ts, now and value."""
    ts = now = 10
    for step, value in steps:
        ts = max(0, ts + step)
        now = max(now, ts)
        window.add("k", value, ts, now)
        yield ts, now, value


@settings(max_examples=400, deadline=None)
@given(steps=adds, pick=st.sampled_from([min, max]))
def test_the_queue_reads_the_extremum_of_the_live_buckets(steps, pick) -> None:
    window = store(pick)
    seen: list[tuple[int, int]] = []  # (ts, value) of every event counted
    for ts, now, value in replay(window, steps):
        if ts > now - N:
            seen.append((ts, value))
        live = [v for t, v in seen if t > now - N]
        assert window.read("k", now) == (pick(live) if live else None)
        state = window.keys.get("k")
        if state is not None:
            assert monotone(_queue_flat(state), pick), state


@settings(max_examples=200, deadline=None)
@given(steps=adds, pick=st.sampled_from([min, max]))
def test_a_snapshot_restores_the_same_queue_and_an_old_snapshot_is_normalized(steps, pick):
    window = store(pick)
    per_bucket: dict[int, int] = {}  # the per-bucket extrema an older store kept
    for ts, now, value in replay(window, steps):
        if ts > now - N:
            per_bucket[ts] = pick(per_bucket.get(ts, value), value)
    copy = store(pick)
    copy.restore(window.state())
    assert copy.state() == window.state()
    cutoff = now - N
    old = [[b, v] for b, v in sorted(per_bucket.items()) if b > cutoff]
    normalized = store(pick)
    normalized.restore({"swept": cutoff, "keys": [["k", old]] if old else []})
    assert normalized.read("k", now) == window.read("k", now)
    assert normalized.state() == window.state()


def test_a_new_minimum_drops_the_buckets_it_beats_and_a_beaten_late_value_changes_nothing():
    window = store(min)
    for ts, value in ((1, 5), (2, 7), (3, 9), (4, 6)):
        window.add("k", value, ts, 4)
    assert _queue_flat(window.keys["k"]) == [1, 5, 4, 6]  # 7 and 9 can never be the min again
    window.add("k", 8, 2, 4)  # late, beaten by bucket 4's 6
    assert _queue_flat(window.keys["k"]) == [1, 5, 4, 6]
    window.add("k", 3, 3, 4)  # late, beats bucket 1's 5
    assert _queue_flat(window.keys["k"]) == [3, 3, 4, 6]
    assert window.read("k", 4) == 3
    assert window.read("k", 9) == 6  # bucket 3 left the window (cutoff 3)


@settings(max_examples=40, deadline=None)
@given(raw=st.data())
def test_no_key_or_state_of_any_store_is_tracked_by_the_cycle_collector(raw):
    """Every aggregation's per-key state, the dicts inside it and a two-field key are born
    untracked and stay so through late events, expiry and sketches (a tracked one would be
    visited by young collections and by every full collection: docs/rules.md, Known limits).
    """
    features = {**FEATURES, "addrs_20s": {**FEATURES["addrs_20s"], "exact_limit": 2}}
    text = pack_text([rule("features.n_10s > 100")], features=features, name="prop")
    component = RulesComponent()
    component.apply(RulePackLoaded(seq=1, id="p", ts=T0, pack_yaml=text, author="t"))
    for event in build_events(raw.draw(steps)):
        component.apply(event)
    for store in component.packs["prop"].stores.values():
        for key, state in store.keys.items():
            assert not gc.is_tracked(key), key
            inner = getattr(state, "older", None) if isinstance(state, _Tally) else None
            if isinstance(state, _Queue):
                inner = state.middle
            if isinstance(state, dict) and state.get(next(iter(state))) == _SKETCHED:
                continue  # a key in sketch mode holds its sketch (see windows.py)
            assert not gc.is_tracked(state), (key, state)
            assert inner is None or not gc.is_tracked(inner), (key, inner)
