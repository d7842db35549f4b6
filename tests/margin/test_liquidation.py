"""Liquidation and bankruptcy prices against the published examples (margin-mechanics.md)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction as F

from fengkong.margin.liquidation import (
    Leg,
    bankruptcy_price,
    equity_at,
    liquidation_price,
    maintenance_at,
    round_liquidation_price,
    solve_price,
)
from fengkong.margin.venues import (
    bitmex_inverse_bankruptcy_price,
    bitmex_inverse_liquidation_price,
    bitmex_linear_cross_prices,
    bybit_inverse_bankruptcy_price,
    bybit_inverse_liquidation_price,
)
from tests.margin.tables import btcusdt_2021

CENT = F(1, 100)


def _cents(price: F, direction: int) -> Decimal:
    return Decimal(str(float(round_liquidation_price(price, CENT, direction)))).quantize(
        Decimal("0.01")
    )


def test_cross_long_liquidation_price_matches_binance_faq_example() -> None:
    """Binance margin-ratio FAQ (https://binance.com/en/support/faq/25edcd7fe0e544839d0847b8cbb2e400):
    wallet 500 USDT, long 0.02 BTC at 50,000 (1,000 USDT) with 20x, cross -> LP = 25,100.40."""
    lp = liquidation_price([Leg(1, F("0.02"), F(1000), btcusdt_2021())], F(500))
    assert lp is not None and lp.brackets == (0,) and lp.direction == 1
    assert _cents(lp.price, lp.direction) == Decimal("25100.41")  # exact 25100.4016: rounded up
    assert round(float(lp.price), 2) == 25100.40


def test_cross_long_after_adding_at_45000_matches_faq_within_the_lot_rounding() -> None:
    """Same FAQ: another long worth 1,000 USDT at 45,000 -> published LP = 35,857.67. With the
    quantity rounded to the 0.001 lot (0.042 BTC, entry cost 2,000) the formula gives 35,857.72;
    margin-mechanics.md §1.3 attributes the 0.05 USDT gap to Binance's display rounding."""
    lp = liquidation_price([Leg(1, F("0.042"), F(2000), btcusdt_2021())], F(500))
    assert lp is not None
    assert round(float(lp.price), 2) == 35857.72
    assert abs(lp.price - F("35857.67")) <= F("0.06")


def test_isolated_long_re_evaluates_the_tier_at_the_liquidation_price() -> None:
    """margin-mechanics.md §1.3 [C]: isolated long 1 BTC at 60,000, 10x, isolated wallet 6,000,
    2021 table: tier 1 would give 54,216.87 (notional outside tier 1); tier 2 gives 54,221.11."""
    table = btcusdt_2021()
    tier1 = solve_price(
        [Leg(1, F(1), F(60000), table)], F(6000), inverse=False, mmrs=(table.mmr(0),),
        cums=(table.cum(0),),
    )  # fmt: skip
    assert tier1 is not None and round(float(tier1[0]), 2) == 54216.87
    lp = liquidation_price([Leg(1, F(1), F(60000), table)], F(6000))
    assert lp is not None and lp.brackets == (1,)
    assert _cents(lp.price, lp.direction) == Decimal("54221.11")


def test_isolated_short_liquidation_price_is_65721_39_rounded_down() -> None:
    """margin-mechanics.md §1.3 [C]: the matching short gives LP = 65,721.39."""
    lp = liquidation_price([Leg(-1, F(1), F(60000), btcusdt_2021())], F(6000))
    assert lp is not None and lp.direction == -1 and lp.brackets == (1,)
    assert _cents(lp.price, lp.direction) == Decimal("65721.39")


def test_hedge_mode_cross_legs_share_one_price_with_tier_recomputed() -> None:
    """margin-mechanics.md §1.3 [C]: hedge, cross, WB 10,000; LONG 1 BTC at 60,000, SHORT 0.5
    at 62,000. Tier 2 for the long gives 38,438.13 (lands in tier 1); tier 1 for both gives
    38,461.54, where equity = MM = 230.77 USDT."""
    table = btcusdt_2021()
    legs = [Leg(1, F(1), F(60000), table), Leg(-1, F("0.5"), F(31000), table)]
    assumed = solve_price(
        legs, F(10000), inverse=False, mmrs=(table.mmr(1), table.mmr(0)),
        cums=(table.cum(1), table.cum(0)),
    )  # fmt: skip
    assert assumed is not None and round(float(assumed[0]), 2) == 38438.13
    lp = liquidation_price(legs, F(10000))
    assert lp is not None and lp.brackets == (0, 0)
    assert _cents(lp.price, lp.direction) == Decimal("38461.54")
    assert round(float(equity_at(legs, F(10000), lp.price)), 2) == 230.77
    assert equity_at(legs, F(10000), lp.price) == maintenance_at(legs, lp.price)


def test_isolated_bankruptcy_prices_are_entry_minus_and_plus_wallet_per_qty() -> None:
    """margin-mechanics.md §1.3 [C]: isolated long BP = EP − IWB/qty, short BP = EP + IWB/qty."""
    table = btcusdt_2021()
    long = bankruptcy_price([Leg(1, F(1), F(60000), table)], F(6000))
    short = bankruptcy_price([Leg(-1, F(1), F(60000), table)], F(6000))
    assert long is not None and long.price == 54000 and long.direction == 1
    assert short is not None and short.price == 66000 and short.direction == -1


def test_coin_margined_cross_long_matches_binance_calculator_33599_40() -> None:
    """Binance COIN-M FAQ and dev.binance.vision thread 6292: WB 101 BTC, long 100,000 BTCUSD
    contracts (10,000,000 USD) at 45,000, cross; calculator LP = 33,599.40. With MMR 12.5 % and
    the current maintenance amount 11.605 BTC the formula gives 33,599.42; with the old amount
    11.81 BTC it gives the user's 33,578.86 (margin-mechanics.md §2)."""
    size = F(100_000 * 100)
    leg = Leg(1, size, size / 45_000, btcusdt_2021())  # table unused: rates given explicitly
    new = solve_price([leg], F(101), inverse=True, mmrs=(F("0.125"),), cums=(F("11.605"),))
    old = solve_price([leg], F(101), inverse=True, mmrs=(F("0.125"),), cums=(F("11.81"),))
    assert new is not None and old is not None and new[1] == 1
    assert round(float(new[0]), 2) == 33599.42
    assert abs(new[0] - F("33599.40")) <= F("0.03")
    assert round(float(old[0]), 2) == 33578.86


def test_bitmex_linear_cross_liquidation_510_bankruptcy_500() -> None:
    """BitMEX isolated/cross margin examples (https://www.bitmex.com/app/isolatedMarginExamples):
    wallet 10,000 USDT, buy 20 ETHUSDT at 1,000, 50x cross, MM 1 % = 200 -> liquidation 510,
    bankruptcy 500."""
    liquidation, bankruptcy = bitmex_linear_cross_prices(F(10000), F(20), F(1000), F("0.01"), 1)
    assert (liquidation, bankruptcy) == (510, 500)


def test_bitmex_inverse_bankruptcy_long_9090_91_short_11111_11() -> None:
    """margin-mechanics.md §7 [C] (BitMEX support's formula, github.com/nottug/bitmex_utils): no
    fees, 10x at 10,000 -> long BP 9,090.91, short BP 11,111.11."""
    long = bitmex_inverse_bankruptcy_price(F(10000), F("0.1"), 1)
    short = bitmex_inverse_bankruptcy_price(F(10000), F("0.1"), -1)
    assert _cents(long, 1) == Decimal("9090.91")
    assert _cents(short, -1) == Decimal("11111.11")


def test_bitmex_inverse_liquidation_adds_maintenance_to_bankruptcy() -> None:
    """BitMEX: ``Liq_long = Bankrupt + EP × (MM + funding)``, ``Liq_short = Bankrupt − EP ×
    (MM − funding)`` (§7); MM 0.5 %, no funding: 9,090.91 + 50 and 11,111.11 − 50."""
    long = bitmex_inverse_liquidation_price(F(10000), F("0.1"), F("0.005"), 1)
    short = bitmex_inverse_liquidation_price(F(10000), F("0.1"), F("0.005"), -1)
    assert long == F(100000, 11) + 50
    assert short == F(100000, 9) - 50


def test_bybit_inverse_cross_bankruptcy_5718_57_liquidation_5739_50() -> None:
    """Bybit "How to calculate Liquidation Price (Inverse Contract)"
    (https://help.bybit.com/hc/en-us/articles/360039261334): balance 0.5 BTC, long 10,000
    contracts at 8,000, MM 0.5 %, taker 0.075 % -> BP 5,718.57; LP 5,739.08 published as
    5,739.50: rounded up to the 0.5 tick."""
    bp = bybit_inverse_bankruptcy_price(F("0.5"), F(10000), F(8000), F("0.00075"), 1)
    assert round(float(bp), 2) == 5718.57
    lp = bybit_inverse_liquidation_price(F("0.5"), F(10000), F(8000), F("0.005"), F("0.00075"), 1)
    assert round(float(lp), 2) == 5739.08
    assert round_liquidation_price(lp, F(1, 2), 1) == F("5739.5")
