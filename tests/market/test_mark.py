"""Mark price: median of three for perpetuals, index + basis for dated futures.

Worked example: /work/shared/specs/margin-mechanics.md §1.6 (Binance "Mark price and price index
in USDⓈ-M futures" FAQ, binance.com/en/support/faq/360033525071), [C].
"""

from __future__ import annotations

from fengkong.market.mark import (
    BasisAverage,
    funding_adjusted_index,
    mark_dated,
    mark_perpetual,
    round_to_tick,
)
from fengkong.model.fixed import parse_units

SCALE = 3
HOUR = 3_600_000


def _p(text: str) -> int:
    return parse_units(text, SCALE, field="price")


def test_spec_example_mark_is_100_02():
    """PI = 100, last funding 0.01%, 4 of 8 hours to funding, MA basis +0.02, last 100.5:
    Price1 = 100.005, Price2 = 100.02, Mark = median(100.005, 100.02, 100.5) = 100.02."""
    rate = parse_units("0.0001", 8, field="rate")
    price1 = funding_adjusted_index(_p("100"), rate, 8, 4 * HOUR, 8 * HOUR)
    assert price1 == _p("100.005")
    price2 = _p("100") + _p("0.02")
    assert price2 == _p("100.02")
    assert mark_perpetual(price1, price2, _p("100.5")) == _p("100.02")


def test_dated_future_mark_is_index_plus_basis():
    assert mark_dated(_p("100"), _p("0.25")) == _p("100.25")


def test_basis_average_samples_once_per_bucket_and_keeps_the_window():
    basis = BasisAverage(window=3, sample_ms=1000)
    assert basis.average() == 0
    basis.observe(0, 10)
    basis.observe(500, 999)  # same 1-s bucket: ignored
    basis.observe(1000, 20)
    basis.observe(2000, 30)
    assert basis.average() == 20
    basis.observe(3000, 40)  # window of 3: (20 + 30 + 40) / 3
    assert basis.average() == 30
    restored = BasisAverage(window=3, sample_ms=1000)
    restored.restore(basis.state())
    assert restored.average() == 30


def test_round_to_tick_is_nearest_ties_to_even_multiple():
    assert round_to_tick(100_024, 5) == 100_025
    assert round_to_tick(100_022, 5) == 100_020
    assert round_to_tick(1_025, 50) == 1_000  # 20.5 ticks -> 20
    assert round_to_tick(1_075, 50) == 1_100  # 21.5 ticks -> 22
