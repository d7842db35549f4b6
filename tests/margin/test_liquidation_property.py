"""Property: at the computed liquidation price margin balance equals maintenance margin.

For random linear and inverse accounts — one-way or hedge, isolated (no other positions) or
cross (other positions' MM and UPNL) — the exact root makes equity equal MM exactly, and with
the mark set to the root rounded to the tick (exchange's favour), the ledger-unit margin
balance and maintenance margin (:mod:`fengkong.margin.contract`, the gate's integer path)
are equal within one tick: not below MM at the rounded price, below it one tick further.
"""

from __future__ import annotations

from fractions import Fraction as F

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fengkong.margin.contract import notional, unrealized_pnl
from fengkong.margin.liquidation import (
    Leg,
    equity_at,
    liquidation_price,
    maintenance_at,
    round_liquidation_price,
)
from tests.factories import exchange, run
from tests.margin.tables import btcusdt_2021, coin_table

_ENGINE, _ = run(exchange("BTCUSDT-PERP", "BTCUSD-PERP").events)
_LEDGER = _ENGINE.component("ledger")
LINEAR = _LEDGER.contract_math("BTCUSDT-PERP")
INVERSE = _LEDGER.contract_math("BTCUSD-PERP")
LINEAR_TABLE, COIN_TABLE = btcusdt_2021(), coin_table()
TICK = 1  # 0.1 at price scale 1 for both instruments
SCALE = 10**8  # USDT and BTC
SLACK = 4  # integer rounding: UPNL floored and MM ceiled per leg, at most 2 legs


@st.composite
def accounts(draw):
    inverse = draw(st.booleans())
    hedge = draw(st.booleans())
    sides = (1, -1) if hedge else (draw(st.sampled_from((1, -1))),)
    legs = []
    for side in sides:
        qty = draw(st.integers(1, 200_000) if inverse else st.integers(1, 20_000))
        entry = draw(st.integers(100_000, 1_000_000))  # 10,000.0 .. 100,000.0
        legs.append((side * qty, entry))
    cross = draw(st.booleans())
    other_mm = draw(st.integers(0, 50 * SCALE)) if cross else 0
    other_upnl = draw(st.integers(-50 * SCALE, 50 * SCALE)) if cross else 0
    wallet = draw(st.integers(1, 200 * SCALE if inverse else 2_000_000 * SCALE))
    return inverse, legs, wallet, other_mm, other_upnl


def _exact_leg(math, table, qty: int, entry_value: int) -> Leg:
    side = 1 if qty > 0 else -1
    size = F(abs(qty) * math.multiplier, 10 ** (math.qty_scale))
    return Leg(side, size, F(abs(entry_value), 10**math.value_scale), table)


@settings(max_examples=300)
@given(accounts())
def test_mark_at_liquidation_price_makes_margin_balance_equal_maintenance(account) -> None:
    inverse, raw_legs, wallet, other_mm, other_upnl = account
    math, table = (INVERSE, COIN_TABLE) if inverse else (LINEAR, LINEAR_TABLE)
    positions = [(qty, math.open_value(qty, entry)) for qty, entry in raw_legs]
    legs = [_exact_leg(math, table, qty, value) for qty, value in positions]
    lp = liquidation_price(
        legs, F(wallet, SCALE), inverse=inverse, other_mm=F(other_mm, SCALE),
        other_upnl=F(other_upnl, SCALE),
    )  # fmt: skip
    assume(lp is not None)
    assert lp is not None
    exact_mm = maintenance_at(legs, lp.price, inverse=inverse, other_mm=F(other_mm, SCALE))
    assert exact_mm is not None
    assert equity_at(legs, F(wallet, SCALE), lp.price, inverse=inverse,
                     other_upnl=F(other_upnl, SCALE)) == exact_mm  # fmt: skip

    rounded = round_liquidation_price(lp.price, F(1, 10), lp.direction) * 10
    assert rounded.denominator == 1
    mark = int(rounded)
    further = mark - lp.direction * TICK
    assume(further > 0)

    def surplus(price: int) -> int | None:
        balance = wallet + other_upnl
        maintenance = other_mm
        for qty, value in positions:
            balance += unrealized_pnl(math, qty, value, price)
            mm = table.maintenance_margin(notional(math, qty, price))
            if mm is None:
                return None
            maintenance += mm
        return balance - maintenance

    at_mark, beyond = surplus(mark), surplus(further)
    assume(at_mark is not None and beyond is not None)
    assert at_mark >= -SLACK
    assert beyond <= SLACK
