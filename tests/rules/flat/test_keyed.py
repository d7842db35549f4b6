"""The kernel call: its argument types, padded so that packs of many sizes share a few
compiled versions of ``keyed.decide`` (a new one compiles for seconds while a pack loads),
and the room it finds before it changes anything."""

from __future__ import annotations

import re

import numpy as np
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fengkong.rules.component import RulesComponent
from fengkong.rules.events import RulePackLoaded
from fengkong.rules.flat import keyed, tally
from fengkong.rules.flat.keyed import padded
from fengkong.rules.flat.pool import FlatPool
from fengkong.rules.flat.windows import FlatCountWindow, FlatExtremumWindow
from fengkong.rules.windows import ExtremumWindow
from tests.rules.kit import decide, loaded, pack_text, rule, withdrawal

T0 = 1_767_225_600_000


@given(count=st.integers(0, 100_000), least=st.sampled_from([2, 8]))
def test_padding_holds_the_count_wastes_at_most_half_and_uses_few_sizes(count, least):
    size = padded(count, least)
    assert size >= max(count, least)
    if count > least:
        assert 2 * size <= 3 * count  # the sizes grow by 1.5x, then 4/3x, in turn
        assert padded(count - 1, least) <= size
        smaller = [padded(n, least) for n in range(least, count + 1, max(1, count // 64))]
        assert len(set(smaller)) <= 2 * count.bit_length()


def _arguments(step_source: str) -> int:
    [call] = set(re.findall(r"FK\(FP\.heads, .*?\((now, ts, .*?),\)\)", step_source))
    return len(call.split(", "))


KEYS = [
    "account",
    "address",
    "ip",
    "device",
    "network",
    "asset",
    ["account", "address"],
    ["account", "ip"],
    ["account", "device"],
]


def test_packs_of_one_to_nine_flat_updates_share_three_argument_sizes():
    sizes = set()
    component = RulesComponent()
    for total in range(1, 10):
        features = {
            f"f{i}": {"agg": "count", "on": "WithdrawalRequest", "key": key, "window": "1h"}
            for i, key in enumerate(KEYS[:total])
        }
        rule = {
            "name": "r",
            "on": "WithdrawalRequest",
            "if": "features.f0 > 3",
            "outcome": "review",
        }
        pack = {"pack": f"p{total}", "version": "1", "features": features, "rules": [rule]}
        [activated] = component.apply(
            RulePackLoaded(
                seq=total, id=f"l{total}", ts=T0, pack_yaml=yaml.safe_dump(pack), author="t"
            )
        )
        assert type(activated).__name__ == "RulePackActivated", activated
        step = component.packs[f"p{total}"].steps["WithdrawalRequest"]
        # now, ts, what; the read of f0's key id; each key's id, or -1 when its update does
        # not run (an empty field)
        assert _arguments(step.source) == padded(4 + total, 8)
        sizes.add(_arguments(step.source))
    assert sizes == {8, 12, 16}  # 5 to 13 arguments: nine sizes unpadded


def test_an_owed_key_updated_again_starts_over_even_when_the_slab_is_full():
    """A key an owed sweep dropped but has not popped yet, updated in a decision: it starts
    over at the back (``keyed._update``). A min/max key then needs a new chunk though its old
    one had room: the call must find that before it changes anything, and grow the slab."""
    g, n = 10, 3
    reference = ExtremumWindow(g, n, 100, 1, max, -1)
    pool = FlatPool()
    pool.slab, pool.meta = tally.new_slab(3)
    store = FlatExtremumWindow(g, n, 100, 1, max, -1, pool)
    for window in (reference, store):
        window.add("a", 5, 100, 100)  # a class-0 chunk
        window.add("a", 3, 110, 110)  # a class-1 chunk (the slab grows to 12 words)
        window.add("b", 7, 110, 110)  # takes the class-0 chunk "a" let go
        window.add("c", 7, 110, 110)  # a new class-0 chunk: every word is carved
        assert window.read("a", 130) == 3  # bucket 10 expired: "a" has room at its end
        window.defer(11)  # bucket 11 leaves the window: "a", "b" and "c" are owed
    assert int(pool.meta[-1]) == len(pool.slab) == 12
    reference.add("a", 4, 150, 150)
    gid = store.table.ids["a"]
    plan = np.array([0, 1, store.slot, 3, 4], np.int64)
    args = (150, 150, keyed.UPDATES, gid, 0, 4)  # no FIRST: the owed sweep is not drained
    out = np.zeros(1, np.int64)
    while (listed := keyed.decide(*pool.arrays, plan, out, args)) < 0:
        pool.grow(listed)
    pool.reap(listed)
    assert store.state() == reference.state()
    assert store.read("a", 150) == reference.read("a", 150) == 4


def test_an_owed_sweep_pops_its_keys_at_the_pace_of_the_last_one_over_its_bucket():
    """100 keys expired together, the store's previous sweep having popped 100: calls every
    tenth of a bucket pop about 10 keys each (the first at least one), and the one at the
    sweep's due time settles the rest, instead of one call popping all 100."""
    pool = FlatPool()
    store = FlatCountWindow(1_000, 10, 10**6, 1, pool)  # buckets of 1 s, 10 of them
    for i in range(100):
        store.add(f"k{i}", 1, 0, 0)
    store.defer(0)  # bucket 0 left the window when now reached 10 s; settled by 11 s
    pool.st[store.slot, keyed.PACE] = 100
    popped = []
    for now in [*range(10_000, 11_000, 100), 11_000]:
        before = len(store)
        keyed._begin(*pool.arrays, now, True)
        pool.reap(int(pool.ctl[keyed.DEAD]))
        popped.append(before - len(store))
    assert popped == [1, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10]
    assert len(store) == 0 and not store._owed and len(store.table.ids) == 0
    assert pool.st[store.slot, keyed.PACE] == 100


def test_a_sketch_an_owed_sweep_dropped_goes_when_its_key_starts_over():
    """A distinct key in sketch mode whose values all expired, its store owing the sweep:
    an update of it before the sweep pops it starts an exact set, and its sketch goes."""
    features = {
        "ips": {
            "agg": "distinct",
            "on": "WithdrawalRequest",
            "key": "account",
            "value": "ip",
            "window": "10s",
            "bucket": "1s",
            "exact_limit": 1,
        }
    }
    component = loaded(pack_text([rule("features.ips > 100")], features))
    [store] = component.packs["test"].stores.values()
    decide(component, withdrawal(ts=T0, account="j", ip="10.0.0.1"))
    for ip in ("10.0.0.2", "10.0.0.3"):  # past the limit of 1: a sketch
        decide(component, withdrawal(ts=T0, account="k", ip=ip))
    assert list(store.sketches) == [store.table.ids["k"]]
    decide(component, withdrawal(ts=T0 + 11_000, account="m"))  # j and k expired: owed
    assert store._owed and list(store.keys) == ["j", "k", "m"]
    decide(component, withdrawal(ts=T0 + 11_500, account="k", ip="10.0.0.4"))
    assert store.sketches == {}
    assert [state for key, state in store.state()["keys"] if key == "k"] == [
        {"exact": [[(T0 + 11_500) // 1_000, ["10.0.0.4"]]]}
    ]
