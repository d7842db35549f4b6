"""Funding: impact notional and prices, premium index, time-weighted average, clamp and cap.

Worked examples: /work/shared/specs/margin-mechanics.md §1.8 (Binance funding-history page
binance.com/vn/futures/funding-history/0; TraderWagon copy docs.traderwagon.com/faq/
futures-trading-introduction/funding-fee). The clamp table there is [C]; the IMN example is
Binance's own ("BNBUSDT max 20x, IMR 5% -> IMN 4,000 USDT").
"""

from __future__ import annotations

import pytest

from fengkong.market.funding import (
    PREMIUM_SCALE,
    PremiumAverage,
    funding_rate,
    impact_margin_notional,
    impact_price,
    next_settlement,
    premium_index,
)
from fengkong.model.fixed import parse_units

HOUR = 3_600_000


def _r(text: str) -> int:
    return parse_units(text, PREMIUM_SCALE, field="rate")


def _rate(premium: str, hours: int = 8) -> int:
    return funding_rate(
        _r(premium),
        interest=_r("0.0001"),
        clamp=_r("0.0005"),
        cap=_r("0.03"),
        floor=_r("-0.03"),
        interval_hours=hours,
        rate_scale=8,
    )


@pytest.mark.parametrize(
    ("premium", "hours", "expected"),
    [
        ("0.0002", 8, "0.0001"),  # |I - P| <= 0.05%: F = I
        ("0.001", 8, "0.0005"),
        ("-0.0003", 8, "0.0001"),
        ("-0.001", 8, "-0.0005"),
        ("0.001", 4, "0.00025"),  # 0.10% on a 4-h interval -> 0.025%
    ],
)
def test_spec_clamp_table_with_interest_0_01_percent(premium, hours, expected):
    """margin-mechanics.md §1.8 table: F = [P + clamp(I − P, −0.05%, +0.05%)] × N/8."""
    assert _rate(premium, hours) == parse_units(expected, 8, field="expected")


def test_cap_and_floor_bound_the_rate():
    capped = funding_rate(
        _r("0.05"),
        interest=_r("0.0001"),
        clamp=_r("0.0005"),
        cap=_r("0.003"),
        floor=_r("-0.003"),
        interval_hours=8,
        rate_scale=8,
    )
    assert capped == parse_units("0.003", 8, field="cap")
    floored = funding_rate(
        _r("-0.05"),
        interest=_r("0.0001"),
        clamp=_r("0.0005"),
        cap=_r("0.003"),
        floor=_r("-0.003"),
        interval_hours=1,
        rate_scale=8,
    )
    assert floored == parse_units("-0.003", 8, field="floor")


def test_spec_impact_margin_notional_bnbusdt_20x_is_4000_usdt():
    """margin-mechanics.md §1.8: IMN = 200 USDT / IMR; 20x -> IMR 5% -> 4,000 USDT."""
    assert impact_margin_notional(200, parse_units("0.05", 8, field="imr"), 8) == 4000


def test_impact_price_walks_the_book_to_the_notional():
    """Bids 100 × 10, 99 × 20, 98 × 50 (price scale 0, qty scale 0); IMN 2,000: 1,000 at 100,
    then 1,000 / 99 = 10.101… at 99: average 2000 / 20.101… = 99.497… -> 99."""
    bids = [(100, 10), (99, 20), (98, 50)]
    assert impact_price(bids, 2000) == 99
    assert impact_price(bids, 1000) == 100
    assert impact_price(bids, 100_000) is None  # book too thin for the notional
    # at price scale 2 the average keeps its decimals: 2000 / (10 + 1000/99) = 99.497487...
    scaled = [(10_000, 10), (9_900, 20)]
    assert impact_price(scaled, 2000 * 100) == 9_950


def test_premium_index_formula():
    """P = [max(0, IB − PI) − max(0, PI − IA)] / PI: IB 100.10 above PI 100 -> +0.1%;
    IA 99.95 below PI -> −0.05%; a book straddling the index -> 0."""
    assert premium_index(10_010, 10_020, 10_000) == _r("0.001")
    assert premium_index(9_940, 9_995, 10_000) == _r("-0.0005")
    assert premium_index(9_990, 10_010, 10_000) == 0


def test_premium_average_uses_linear_time_weights():
    """(1·P1 + 2·P2 + 3·P3) / 6 with one sample per 5-s bucket."""
    average = PremiumAverage(sample_ms=5000)
    for now, premium in [(0, 600), (4999, 10**9), (5000, 0), (10_000, 300)]:
        average.observe(now, premium)
    assert average.samples == 3
    assert average.average() == (1 * 600 + 2 * 0 + 3 * 300) // 6
    average.reset()
    assert average.average() == 0


def test_next_settlement_is_aligned_to_midnight_utc():
    assert next_settlement(0, 8) == 8 * HOUR
    assert next_settlement(8 * HOUR, 8) == 16 * HOUR
    assert next_settlement(8 * HOUR - 1, 4) == 8 * HOUR
    assert next_settlement(30 * 60_000, 1) == HOUR
