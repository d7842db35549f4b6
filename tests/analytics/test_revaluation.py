"""Full revaluation per instrument kind, and portfolio files."""

from __future__ import annotations

import numpy as np
import pytest

from fengkong.analytics.instruments import InstrumentTable, OptionTerms, RiskInstrument
from fengkong.analytics.portfolio import PortfolioFileError, load_portfolio, parse_portfolio
from fengkong.analytics.revaluation import delta_exposures, unit_pnl
from fengkong.market.options import black76
from fengkong.model.enums import InstrumentKind, OptionKind

from .conftest import EXAMPLES

MOVES = np.array([[-0.5], [-0.1], [0.0], [0.07], [0.8]])
PUT = OptionTerms(OptionKind.PUT, strike=66_000.0, years_to_expiry=0.25, volatility=0.5)


def table(*instruments: RiskInstrument) -> InstrumentTable:
    return InstrumentTable.build(instruments, ("BTC",))


def test_linear_and_spot_pnl_is_multiplier_price_return():
    t = table(
        RiskInstrument("BTCUSDT", InstrumentKind.SPOT, "BTC", 60_000.0),
        RiskInstrument("BTCUSDT-PERP", InstrumentKind.LINEAR_PERPETUAL, "BTC", 60_100.0, 0.001),
    )
    pnl = unit_pnl(t, MOVES)
    np.testing.assert_allclose(pnl[:, 0], 60_000.0 * MOVES[:, 0], rtol=1e-15)
    np.testing.assert_allclose(pnl[:, 1], 60.1 * MOVES[:, 0], rtol=1e-15)


def test_inverse_pnl_is_the_coin_pnl_converted_at_the_scenario_price():
    """Binance COIN-M: PnL (coin) = qty × face × (1/entry − 1/exit); in USD at the exit price."""
    t = table(
        RiskInstrument("BTCUSD-PERP", InstrumentKind.INVERSE_PERPETUAL, "BTC", 60_000.0, 100.0)
    )
    exit_price = 60_000.0 * (1 + MOVES[:, 0])
    coin = 100.0 * (1 / 60_000.0 - 1 / exit_price)
    np.testing.assert_allclose(unit_pnl(t, MOVES)[:, 0], coin * exit_price, rtol=1e-12)
    np.testing.assert_allclose(unit_pnl(t, MOVES)[:, 0], 100.0 * MOVES[:, 0], atol=1e-12)


def test_option_is_revalued_in_full_with_black76_not_by_delta():
    t = table(RiskInstrument("BTC-P", InstrumentKind.OPTION, "BTC", 66_000.0, option=PUT))
    pnl = unit_pnl(t, MOVES, horizon_days=1)[:, 0]
    now = black76(66_000.0, 66_000.0, 0.25, 0.5, 0.0, "put")
    for move, value in zip(MOVES[:, 0], pnl, strict=True):
        then = black76(66_000.0 * (1 + move), 66_000.0, 0.25 - 1 / 365, 0.5, 0.0, "put").price
        assert value == pytest.approx(then - now.price, rel=1e-12, abs=1e-9)
    delta_only = now.delta * 66_000.0 * MOVES[0, 0]
    assert pnl[0] > delta_only + 5_000.0  # convexity of a long put in a −50% crash


def test_option_past_expiry_pays_intrinsic_and_vol_multiplier_reprices():
    short_dated = OptionTerms(OptionKind.CALL, 60_000.0, years_to_expiry=2 / 365, volatility=0.6)
    t = table(RiskInstrument("C", InstrumentKind.OPTION, "BTC", 60_000.0, option=short_dated))
    now = black76(60_000.0, 60_000.0, 2 / 365, 0.6, 0.0, "call").price
    pnl = unit_pnl(t, np.array([[0.1]]), horizon_days=10)[0, 0]
    assert pnl == pytest.approx(6_000.0 - now, rel=1e-12)
    stressed = unit_pnl(t, np.array([[0.0]]), horizon_days=0, vol_multiplier=2.0)[0, 0]
    assert stressed == pytest.approx(
        black76(60_000.0, 60_000.0, 2 / 365, 1.2, 0.0, "call").price - now, rel=1e-12
    )


def test_coin_settled_option_pnl_is_the_coin_value_change_at_the_scenario_price():
    coin_put = OptionTerms(OptionKind.PUT, 66_000.0, 0.25, 0.5, coin_settled=True)
    t = table(RiskInstrument("P", InstrumentKind.OPTION, "BTC", 66_000.0, option=coin_put))
    end = 66_000.0 * 0.8
    v0 = black76(66_000.0, 66_000.0, 0.25, 0.5, 0.0, "put").price
    v1 = black76(end, 66_000.0, 0.25 - 1 / 365, 0.5, 0.0, "put").price
    assert unit_pnl(t, np.array([[-0.2]]))[0, 0] == pytest.approx((v1 / end - v0 / 66_000.0) * end)


def test_delta_exposures_sum_per_asset():
    t = InstrumentTable.build(
        [
            RiskInstrument("BTCUSDT", InstrumentKind.SPOT, "BTC", 60_000.0),
            RiskInstrument("ETHUSDT", InstrumentKind.LINEAR_PERPETUAL, "ETH", 2_000.0),
            RiskInstrument("BTCUSD", InstrumentKind.INVERSE_PERPETUAL, "BTC", 60_000.0, 100.0),
            RiskInstrument("P", InstrumentKind.OPTION, "BTC", 66_000.0, option=PUT),
        ],
        ("BTC", "ETH"),
    )
    delta = black76(66_000.0, 66_000.0, 0.25, 0.5, 0.0, "put").delta
    exposure = delta_exposures(t, np.array([2.0, -10.0, -300.0, 4.0]))
    assert exposure[0] == pytest.approx(120_000.0 - 30_000.0 + 4 * delta * 66_000.0)
    assert exposure[1] == -20_000.0


def test_example_portfolio_loads():
    portfolio = load_portfolio(EXAMPLES / "portfolio.yaml")
    assert portfolio.underlyings == ("BTC", "ETH", "SOL", "XRP")
    assert portfolio.has_options
    assert portfolio.positions[4].multiplier == 100.0
    assert portfolio.positions[5].option.coin_settled


def test_portfolio_file_lists_every_problem_with_its_path():
    document = {
        "as_of": "2026-03-30",
        "surplus": 1,
        "positions": [
            {"symbol": "X", "kind": "future", "underlying": "BTC", "quantity": "1"},
            {"symbol": "Y", "kind": "inverse_perpetual", "underlying": "BTC", "quantity": "abc"},
            {
                "symbol": "Y",
                "kind": "option",
                "underlying": "BTC",
                "quantity": 1,
                "option_kind": "straddle",
                "strike": -5,
                "expiry": "2026-01-01",
                "volatility": 0.5,
            },
        ],
    }
    with pytest.raises(PortfolioFileError) as caught:
        parse_portfolio(document, "book.yaml")
    assert caught.value.problems == [
        "surplus: unknown field",
        "positions[0].kind: 'future' is not one of spot | linear_perpetual | inverse_perpetual"
        " | linear_future | inverse_future | option",
        "positions[1].quantity: 'abc' is not a decimal number",
        "positions[1].multiplier: required for inverse contracts (USD face per contract)",
        "positions[2].option_kind: 'straddle' is not one of call | put",
        "positions[2].strike: -5 must be > 0",
        "positions[2].expiry: 2026-01-01 is not after as_of",
        "positions[2].symbol: 'Y' repeats positions[1]",
    ]
    assert str(caught.value).startswith("book.yaml: 8 problem(s)")
