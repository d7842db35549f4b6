"""Index price: weights, staleness, both published outlier rules, quorum.

Worked examples: /work/shared/specs/margin-mechanics.md §1.7 (Binance "Mark price and price
index" FAQ, older USDⓈ-M text binance.com/pl/support/faq/360033525071; newer Price Index FAQ
mirrored at bbapi.viigoo.eu.org/en/support/faq/detail/66607f4c63e748568f503fcbd8f08965).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fengkong.market.index import (
    IndexStatus,
    OutlierRule,
    SourceQuote,
    compute_index,
    median2,
    nearest,
)
from fengkong.model.fixed import parse_units

SCALE = 4


def _w(text: str) -> int:
    return parse_units(text, 8, field="weight")


def _p(text: str) -> int:
    return parse_units(text, SCALE, field="price")


SPEC_QUOTES = [
    SourceQuote("a", _p("100"), _w("0.4"), 0),
    SourceQuote("b", _p("101"), _w("0.3"), 0),
    SourceQuote("c", _p("106.5"), _w("0.2"), 0),
    SourceQuote("d", _p("100.5"), _w("0.1"), 0),
]


def _index(quotes, rule, limit="0.05", now=0, stale_after_ms=10_000, min_sources=1):
    return compute_index(
        quotes,
        now=now,
        stale_after_ms=stale_after_ms,
        rule=rule,
        limit=_w(limit),
        min_sources=min_sources,
    )


def test_spec_median_of_the_four_sources_is_100_75():
    """margin-mechanics.md §1.7 [C]: median 100.75."""
    assert median2([q.price for q in SPEC_QUOTES]) == 2 * _p("100.75")


def test_old_rule_drops_the_106_5_source_and_renormalises_to_100_4375():
    """margin-mechanics.md §1.7 [C], older Binance USDⓈ-M text: > 5% from the median gets
    weight 0, weights renormalised: (0.4·100 + 0.3·101 + 0.1·100.5) / 0.8 = 100.4375."""
    result = _index(SPEC_QUOTES, OutlierRule.EXCLUDE, "0.05")
    assert result.price == _p("100.4375")
    assert result.status is IndexStatus.OK
    assert result.healthy == ("a", "b", "d")


def test_new_rule_caps_the_106_5_source_at_103_7725_giving_101_1045():
    """margin-mechanics.md §1.7 [C], newer Price Index FAQ: 3% cap, 106.5 -> 100.75 × 1.03
    = 103.7725, index 101.1045."""
    result = _index(SPEC_QUOTES, OutlierRule.CAP, "0.03")
    assert result.price == _p("101.1045")
    assert result.healthy == ("a", "b", "c", "d")


def test_cap_rule_published_example_median_20000():
    """Price Index FAQ: median 20,000, a source +7% is capped at 20,600 and −6% at 19,400."""
    quotes = [
        SourceQuote("lo", _p("18800"), _w("1"), 0),  # −6%
        SourceQuote("m1", _p("20000"), _w("1"), 0),
        SourceQuote("m2", _p("20000"), _w("1"), 0),
        SourceQuote("m3", _p("20000"), _w("1"), 0),
        SourceQuote("hi", _p("21400"), _w("1"), 0),  # +7%
    ]
    result = _index(quotes, OutlierRule.CAP, "0.03")
    assert result.price == (_p("19400") + 3 * _p("20000") + _p("20600")) // 5


def test_old_rule_with_two_outliers_uses_the_median_of_all_sources():
    """Older USDⓈ-M text: when more than one source deviates > 5%, the index is the median."""
    quotes = [*SPEC_QUOTES, SourceQuote("e", _p("90"), _w("0.1"), 0)]
    result = _index(quotes, OutlierRule.EXCLUDE, "0.05")
    assert result.price == _p("100.5")  # median of 90, 100, 100.5, 101, 106.5


def test_stale_source_gets_weight_zero():
    """A source with no update within the staleness limit (10 s, older text) is excluded."""
    quotes = [*SPEC_QUOTES[:2], SPEC_QUOTES[3]._replace(time=-10_001)]
    result = _index(quotes, OutlierRule.EXCLUDE, now=0)
    assert result.price == nearest(_p("100") * 4 + _p("101") * 3, 7)
    assert "d" not in result.healthy


def test_too_few_healthy_sources_marks_the_index_stale():
    fresh = SPEC_QUOTES[0]
    old = [q._replace(time=-60_000) for q in SPEC_QUOTES[1:]]
    result = _index([fresh, *old], OutlierRule.CAP, min_sources=2)
    assert result.status is IndexStatus.STALE_TOO_FEW_SOURCES
    none = _index([q._replace(time=-60_000) for q in SPEC_QUOTES], OutlierRule.CAP)
    assert none.status is IndexStatus.STALE_NO_SOURCES
    assert none.price is None


@given(
    prices=st.lists(st.integers(1, 10**12), min_size=1, max_size=9),
    weights=st.lists(st.integers(1, 10**8), min_size=9, max_size=9),
    rule=st.sampled_from(OutlierRule),
    limit=st.integers(0, 10**8),
)
def test_index_lies_within_the_healthy_sources_range(prices, weights, rule, limit):
    quotes = [SourceQuote(f"s{i}", p, weights[i], 0) for i, p in enumerate(prices)]
    result = compute_index(quotes, now=0, stale_after_ms=1, rule=rule, limit=limit, min_sources=1)
    healthy = [q.price for q in quotes if q.source in result.healthy]
    assert min(healthy) <= result.price <= max(healthy)


def test_nearest_rounds_ties_to_even():
    assert [nearest(n, 2) for n in (1, 3, 5, -1, -3)] == [0, 2, 2, 0, -2]
    assert nearest(7, 3) == 2 and nearest(8, 3) == 3 and nearest(-8, 3) == -3
