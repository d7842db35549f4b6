"""The simulated venue: square-root impact, monotone in size, exact in the lots it fills."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.sim.venue import DepthModel, Venue, walk

MODEL = DepthModel(depth=10_000.0, eta=0.01, half_spread=0.0001)
REF = 600_000  # 60,000.0 at tick 0.1


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2_000_000), st.booleans(), st.floats(0, 50_000))
def test_child_fills_sum_exactly_and_worsen_monotonically(qty, sell, start):
    result = walk(MODEL, sell, qty, REF, None, start)
    assert sum(c.qty for c in result.children) == result.filled == qty
    assert result.unfilled == 0
    prices = [c.price for c in result.children]
    assert prices == sorted(prices, reverse=sell)
    assert all(c.qty > 0 for c in result.children)
    assert (prices[0] < REF) if sell else (prices[0] > REF)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 500_000), st.integers(1, 500_000), st.booleans())
def test_a_larger_order_never_fills_at_a_better_average_price(a, b, sell):
    small, large = sorted((a, b))
    p_small = walk(MODEL, sell, small, REF, None, 0.0).average_price()
    p_large = walk(MODEL, sell, large, REF, None, 0.0).average_price()
    assert (p_large <= p_small) if sell else (p_large >= p_small)


def test_impact_follows_the_square_root_law():
    """An order ending on a slice boundary Q trades its last slice at
    P (1 − half_spread − eta sqrt(Q/depth)), rounded down to the tick for a sell; 4x the size
    moves the price 2x as far (beyond the spread)."""
    for m in (30, 40, 50):
        qty = MODEL.boundary(m)
        last = walk(MODEL, True, qty, REF, None, 0.0).children[-1].price
        assert last == math.floor(REF * (1 - MODEL.impact(qty)))
    moves = [REF - walk(MODEL, True, MODEL.boundary(m), REF, None, 0.0).children[-1].price
             for m in (40, 46)]  # fmt: skip
    sizes = [MODEL.boundary(40), MODEL.boundary(46)]
    expected = MODEL.impact(sizes[1]) / MODEL.impact(sizes[0])
    assert moves[1] / moves[0] == pytest.approx(expected, rel=1e-3)
    assert expected == pytest.approx(math.sqrt(sizes[1] / sizes[0]), rel=0.01)


def test_the_limit_price_leaves_the_rest_unfilled():
    limit = 594_000  # 1 % below the reference: the depth within it is about 10,000 lots
    result = walk(MODEL, True, 50_000, REF, limit, 0.0)
    assert 0 < result.filled < 50_000 and result.filled + result.unfilled == 50_000
    assert min(c.price for c in result.children) >= limit
    assert 8_000 <= result.filled <= 10_000


def test_consumed_depth_recovers_with_its_half_life():
    venue = Venue({"BTCUSDT-PERP": MODEL})
    first = venue.fill("BTCUSDT-PERP", True, 5_000, REF, None, ts=0)
    at_once = Venue({"BTCUSDT-PERP": MODEL})
    at_once.fill("BTCUSDT-PERP", True, 5_000, REF, None, ts=0)
    second = at_once.fill("BTCUSDT-PERP", True, 5_000, REF, None, ts=0)
    later = venue.fill("BTCUSDT-PERP", True, 5_000, REF, None, ts=10 * MODEL.half_life_ms)
    assert second.average_price() < later.average_price()
    gap = first.average_price() - second.average_price()
    assert 0 <= first.average_price() - later.average_price() < gap / 50  # almost recovered
    assert venue.consumed["BTCUSDT-PERP"][0] == pytest.approx(5_000 + 5_000 / 1024, rel=1e-9)
    with pytest.raises(ValueError, match="before"):
        venue.fill("BTCUSDT-PERP", True, 1, REF, None, ts=0)
