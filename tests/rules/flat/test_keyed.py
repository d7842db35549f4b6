"""The kernel call's argument types: padded so that packs of many sizes share a few compiled
versions of ``keyed.decide`` (a new one compiles for seconds while a pack loads)."""

from __future__ import annotations

import re

import yaml
from hypothesis import given
from hypothesis import strategies as st

from fengkong.rules.component import RulesComponent
from fengkong.rules.events import RulePackLoaded
from fengkong.rules.flat.keyed import padded

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
