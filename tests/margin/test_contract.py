"""Integer margin arithmetic on real instruments (ContractMath), against published numbers."""

from __future__ import annotations

from fractions import Fraction as F

from fengkong.margin.contract import (
    initial_margin,
    margin_ratio,
    notional,
    open_loss,
    order_margin,
    unrealized_pnl,
)
from fengkong.margin.liquidation import Leg, liquidation_price
from tests.factories import exchange, run
from tests.margin.tables import btcusdt_2021

USDT = 10**8


def _maths():
    engine, _ = run(exchange("BTCUSDT-PERP", "BTCUSD-PERP").events)
    ledger = engine.component("ledger")
    return ledger.contract_math("BTCUSDT-PERP"), ledger.contract_math("BTCUSD-PERP")


def test_bybit_usdt_maintenance_example_absorbs_150_usdt() -> None:
    """Bybit "Maintenance Margin (USDT Contract)": 1 BTC at 10,000 with 50x -> IM 200, MM (0.5 %)
    50 -> the position can absorb a 150 USDT unrealized loss."""
    linear, _ = _maths()
    size = notional(linear, 1000, 100_000)  # 1.000 BTC at 10,000.0
    assert size == 10_000 * USDT
    im = initial_margin(size, 50)
    mm = btcusdt_2021().maintenance_margin(size) + size // 1000  # 0.4 % + 0.1 % = 0.5 %
    assert (im, mm, im - mm) == (200 * USDT, 50 * USDT, 150 * USDT)


def test_bitmex_cross_initial_margin_400_leaves_9600_available() -> None:
    """BitMEX cross example: wallet 10,000 USDT, buy 20 ETHUSDT at 1,000 with 50x: IM 2 % = 400,
    available 9,600 (https://www.bitmex.com/app/isolatedMarginExamples)."""
    linear, _ = _maths()
    im = initial_margin(notional(linear, 20_000, 10_000), 50)  # 20 contracts of 1 at 1,000.0
    assert im == 400 * USDT and 10_000 * USDT - im == 9_600 * USDT


def test_margin_ratio_reaches_100_percent_at_the_binance_faq_liquidation_price() -> None:
    """Binance: Margin Ratio = MM / Margin Balance, liquidation at 100 % (FAQ 25edcd7f…); at the
    FAQ example's liquidation price 25,100.40 (wallet 500, 0.02 BTC long at 50,000) the ratio
    crosses 100 %: at or above it on the 0.1 tick below the exact root, below it one tick up."""
    linear, _ = _maths()
    table = btcusdt_2021()
    lp = liquidation_price([Leg(1, F("0.02"), F(1000), table)], F(500))
    assert lp is not None and 251_004 < lp.price * 10 < 251_005
    entry_value = linear.open_value(20, 500_000)

    def ratio_at(mark: int) -> F | None:
        balance = 500 * USDT + unrealized_pnl(linear, 20, entry_value, mark)
        return margin_ratio(table.maintenance_margin(notional(linear, 20, mark)), balance)

    below, above = ratio_at(251_004), ratio_at(251_005)
    assert below is not None and above is not None
    assert above < 1 <= below  # balance ≈ MM ≈ 2 USDT there: one tick moves the ratio 0.1 %
    assert margin_ratio(1, 0) is None


def test_linear_upnl_is_side_times_qty_times_mark_minus_entry() -> None:
    linear, _ = _maths()
    value = linear.open_value(-500, 600_000)  # short 0.5 BTC at 60,000
    assert unrealized_pnl(linear, -500, value, 620_000) == -1000 * USDT
    assert unrealized_pnl(linear, 0, 0, 620_000) == 0


def test_inverse_upnl_is_face_value_times_reciprocal_difference() -> None:
    """margin-mechanics.md conventions: ``UPNL = side × N × (1/entry − 1/mark)``: 100 contracts
    of 100 USD long from 50,000 to 40,000 lose 10,000 × (1/40,000 − 1/50,000) = 0.05 BTC."""
    _, inverse = _maths()
    value = inverse.open_value(100, 500_000)
    assert unrealized_pnl(inverse, 100, value, 400_000) == -5_000_000
    assert unrealized_pnl(inverse, -100, inverse.open_value(-100, 500_000), 400_000) == 5_000_000


def test_open_loss_charges_a_buy_above_mark_and_a_sell_below_it_only() -> None:
    """Binance open-order margin: IM at the order price + the loss the order shows at once."""
    linear, inverse = _maths()
    assert open_loss(linear, 100, 510_000, 500_000) == 100 * USDT  # 0.1 BTC, 1,000 above
    assert open_loss(linear, -100, 490_000, 500_000) == 100 * USDT
    assert open_loss(linear, 100, 490_000, 500_000) == 0
    assert open_loss(linear, -100, 510_000, 500_000) == 0
    # inverse: 100 contracts bought at 50,000 against a 40,000 mark: 10,000/40,000 − 10,000/50,000
    assert open_loss(inverse, 100, 500_000, 400_000) == 5_000_000
    im = initial_margin(notional(linear, 100, 510_000), 20)
    assert order_margin(linear, 100, 510_000, 500_000, 20) == im + 100 * USDT
