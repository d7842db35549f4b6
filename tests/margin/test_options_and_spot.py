"""Short-option standard margin (Deribit, OKX), Deribit futures rates, spot cross margin."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from fengkong.margin.options import (
    deribit_short_option_margin,
    okx_sell_to_open_margin,
    okx_short_option_margin,
    otm_amount,
)
from fengkong.margin.spot import (
    MarginLevelState,
    MarginLevelThresholds,
    interest_due,
    interest_hours,
    margin_level,
    max_borrowable,
)
from fengkong.margin.venues import deribit_future_margin
from fengkong.model.enums import OptionKind

CALL, PUT = OptionKind.CALL, OptionKind.PUT
H = 3_600_000


@pytest.mark.parametrize(
    ("kind", "strike", "mark", "im", "mm"),
    [
        (CALL, 70_000, "0.005", "0.105", "0.080"),
        (CALL, 62_000, "0.03", "0.14667", "0.105"),
        (CALL, 55_000, "0.10", "0.25", "0.175"),
        (PUT, 58_000, "0.02", "0.13667", "0.095"),
    ],
)
def test_deribit_short_option_margin_table(kind, strike, mark, im, mm) -> None:
    """margin-mechanics.md §5.2 [C] from Deribit's formulas (doc.tslab.pro Deribit margin
    page; support.deribit.com Inverse Options): underlying 60,000, per 1 BTC contract."""
    got_im, got_mm = deribit_short_option_margin(kind, F(strike), F(60_000), F(mark))
    assert round(got_im, 5) == F(im)
    assert got_mm == F(mm)


def test_okx_short_call_position_and_sell_to_open_order_margin() -> None:
    """OKX option guide (mirrored at https://365shuku.com/13503.html): sell 100 BTCUSD calls
    (multiplier 0.1) at 0.06 BTC, OTM 100 USD, underlying 5,900, margin coefficient 1.02,
    option mark 0.0575: position margin [max(0.1, 0.15 − 100/5900) × 1.02 + 0.0575] × 0.1 =
    0.01932 BTC per contract; sell-to-open max(0.01932 − 0.006 + 0.00002, 0.01) × 100 =
    1.334 BTC (0.00002: the per-contract fee term of the published arithmetic)."""
    multiplier = F(1, 10)
    imr, _ = okx_short_option_margin(CALL, F(100), F(5900), F("0.0575"), F("1.02"))
    position = imr * multiplier
    assert round(position, 5) == F("0.01932")
    order = okx_sell_to_open_margin(position, F("0.06") * multiplier, F("0.00002"), F("0.01"))
    assert round(order * 100, 3) == F("1.334")


def test_okx_maintenance_uses_c_times_margin_factor() -> None:
    """OKX: short call MMR = c × MarginFactor + mark; put max(c, c × mark) × MF + mark."""
    _, call = okx_short_option_margin(CALL, F(0), F(5900), F("0.0575"), F("1.02"))
    _, put = okx_short_option_margin(PUT, F(0), F(5900), F("0.0575"), F("1.02"))
    assert call == F("0.03") * F("1.02") + F("0.0575") == put


def test_otm_amount_of_calls_and_puts() -> None:
    assert otm_amount(CALL, F(70_000), F(60_000)) == 10_000
    assert otm_amount(CALL, F(55_000), F(60_000)) == 0
    assert otm_amount(PUT, F(58_000), F(60_000)) == 2_000


@pytest.mark.parametrize(
    ("size", "price", "base", "k", "rate", "margin_quote"),
    [
        (25, 100_000, "0.02", "0.00005", "0.02125", 53_125),
        (350, 100_000, "0.02", "0.00005", "0.0375", 1_312_500),
        (25, 200, "0.04", "0.000005", "0.040125", F("200.625")),
        (6000, 200, "0.04", "0.000005", "0.07", 84_000),
    ],
)
def test_deribit_linear_perpetual_initial_margin(size, price, base, k, rate, margin_quote) -> None:
    """Deribit Linear Perpetual page (support.deribit.com/hc/en-us/articles/25944738177565):
    BTC_USDC IM = 2 % + size × 0.005 %; SOL_USDC IM = 4 % + size × 0.0005 %."""
    got_rate, margin = deribit_future_margin(F(size), F(price), F(base), F(k))
    assert got_rate == F(rate)
    assert margin * price == margin_quote


def test_deribit_linear_perpetual_maintenance_margin() -> None:
    """Same page: 25 BTC MM 1.125 % = 0.28125 BTC; 25 SOL MM 2.0125 % = 0.503125 SOL."""
    assert deribit_future_margin(F(25), F(100_000), F("0.01"), F("0.00005")) == (
        F("0.01125"), F("0.28125"),
    )  # fmt: skip
    assert deribit_future_margin(F(25), F(200), F("0.02"), F("0.000005"))[1] == F("0.503125")


def test_binance_margin_interest_borrowed_1320_repaid_1415_is_two_hours() -> None:
    """Binance (https://www.binance.com/en/support/articles/360030157812): 1,000 USDT borrowed
    13:20, repaid 14:15 at 0.02 %/day -> 1000 × (0.02 %/24) × 2 = 0.01666667 USDT."""
    hours = interest_hours(13 * H + 20 * 60_000, 14 * H + 15 * 60_000)
    assert hours == 2
    assert interest_due(1000 * 10**8, [F("0.0002") / 24] * hours) == 1_666_667


def test_binance_dynamic_rate_borrowed_1355_now_1430_is_0_02_usdt() -> None:
    """Binance dynamic interest FAQ (…/360030157812): 1,000 USDT at hourly 0.001 %, borrowed
    13:55, now 14:30 -> 0.02 USDT."""
    hours = interest_hours(13 * H + 55 * 60_000, 14 * H + 30 * 60_000)
    assert interest_due(1000 * 10**8, [F("0.00001")] * hours) == 2_000_000


def test_first_hour_is_charged_at_borrowing() -> None:
    assert interest_hours(5 * H + 1, 5 * H + 1) == 1
    with pytest.raises(ValueError, match="before borrowed_at"):
        interest_hours(5 * H, 4 * H)


@pytest.mark.parametrize(
    ("level", "state"),
    [
        ("2.5", MarginLevelState.FULL),
        ("2", MarginLevelState.NO_TRANSFER_OUT),
        ("1.5", MarginLevelState.NO_BORROW),
        ("1.3", MarginLevelState.MARGIN_CALL),
        ("1.11", MarginLevelState.MARGIN_CALL),
        ("1.1", MarginLevelState.LIQUIDATION),
    ],
)
def test_cross_3x_margin_level_thresholds(level, state) -> None:
    """Binance margin level FAQ (…/360030493931), cross 3x: > 2 full; 1.5–2 no transfer out;
    1.3–1.5 no borrow; 1.1–1.3 margin call; <= 1.1 liquidation."""
    assert MarginLevelThresholds().state(F(level)) is state


def test_margin_level_is_assets_over_liabilities_plus_interest() -> None:
    """Margin Level = Total Asset Value / (Total Liabilities + Outstanding Interest) (§3)."""
    level = margin_level(F(3), F(2), F("0.5"))
    assert level == F(6, 5)
    assert MarginLevelThresholds().state(level) is MarginLevelState.MARGIN_CALL
    assert margin_level(F(3), F(0), F(0)) is None
    assert MarginLevelThresholds().state(None) is MarginLevelState.FULL


def test_max_borrowable_keeps_the_level_at_the_borrow_threshold() -> None:
    x = max_borrowable(F(10), F(2), F(0), F(3, 2))
    assert margin_level(F(10) + x, F(2) + x, F(0)) == F(3, 2)
    assert max_borrowable(F(1), F(2), F(0), F(3, 2)) == 0
