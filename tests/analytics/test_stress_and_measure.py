"""Stress scenarios from the real crash files, reverse stress, and VaR by each method."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fengkong.analytics.history import load_daily_bars, load_minute_bars
from fengkong.analytics.instruments import InstrumentTable, RiskInstrument
from fengkong.analytics.measure import (
    Method,
    RiskSettings,
    load_market_history,
    measure,
    measure_book,
    overlapping_sums,
)
from fengkong.analytics.parametric import Innovation
from fengkong.analytics.portfolio import load_portfolio
from fengkong.analytics.stress import (
    historical_scenarios,
    hypothetical_scenarios,
    max_drawdown,
    reverse_stress,
    run_scenarios,
    stressed_covariance,
)
from fengkong.analytics.tail import var_es
from fengkong.model.enums import InstrumentKind

from .conftest import EXAMPLES


@pytest.fixture(scope="module")
def scenarios(data_dir):
    return {s.name: s for s in historical_scenarios(data_dir, ("BTC", "ETH", "SOL", "DOGE"))}


def test_black_thursday_one_day_move_is_the_daily_close_to_close(data_dir, scenarios):
    btc = load_daily_bars(data_dir, "BTC")
    expected = btc.loc["2020-03-12", "close"].item() / btc.loc["2020-03-11", "close"].item() - 1
    assert scenarios["2020-03-12 1-day"].shocks["BTC"] == expected
    assert expected == pytest.approx(-0.39505, abs=5e-6)


def test_btc_intraday_move_is_the_perpetual_peak_to_trough_in_the_minute_file(data_dir, scenarios):
    bars = load_minute_bars(data_dir, "2020-03-12")
    trough = bars["low"].idxmin()  # 2020-03-13 02:16, 3621.81
    peak = max(bars.loc[:trough, "high"].iloc[:-1].max(), bars.loc[trough, "open"])
    assert scenarios["2020-03-12 intraday"].shocks["BTC"] == pytest.approx(3621.81 / peak - 1)
    assert "1-minute" in scenarios["2020-03-12 intraday"].sources["BTC"]
    assert "1-hour ETHUSDT" in scenarios["2022-11-08 intraday"].sources["ETH"]


def test_an_asset_not_yet_listed_takes_btcs_move_and_says_so(scenarios):
    crash = scenarios["2020-03-12 1-day"]
    assert crash.shocks["SOL"] == crash.shocks["BTC"]
    assert "proxy: SOL not listed on 2020-03-12" in crash.sources["SOL"]
    assert "proxy" not in scenarios["2022-11-08 1-day"].sources["SOL"]


def test_max_drawdown_reads_the_high_before_the_low():
    import pandas as pd

    bars = pd.DataFrame({"open": [100.0, 110, 90], "high": [120.0, 115, 95], "low": [95.0, 80, 85]})
    assert max_drawdown(bars) == pytest.approx(80 / 120 - 1)


@pytest.fixture(scope="module")
def linear_book():
    t = InstrumentTable.build(
        [
            RiskInstrument("BTCUSDT", InstrumentKind.SPOT, "BTC", 60_000.0),
            RiskInstrument("ETHUSDT", InstrumentKind.LINEAR_PERPETUAL, "ETH", 2_000.0),
        ]
    )
    return t, np.array([10.0, 100.0])  # 600k + 200k long


def test_uniform_shock_pnl_of_a_linear_book_is_exposure_times_move(linear_book):
    t, q = linear_book
    results = run_scenarios(t, q, hypothetical_scenarios(t.assets, (-0.3, 0.2), ()))
    assert results.loc["all assets -30%", "pnl"] == pytest.approx(-240_000.0)
    assert results.loc["all assets +20%", "pnl"] == pytest.approx(160_000.0)


def test_reverse_stress_finds_the_move_that_exhausts_the_buffer(linear_book):
    t, q = linear_book
    result = reverse_stress(t, q, buffer=100_000.0)
    assert result.move_down == pytest.approx(-0.125, abs=1e-9)  # 800k × 12.5% = 100k
    assert result.move_up is None  # a long book never loses on a rally
    with pytest.raises(ValueError, match="buffer"):
        reverse_stress(t, q, buffer=0.0)


def test_stressed_covariance_scales_vols_and_sets_correlations_to_one():
    cov = np.array([[0.04, 0.006], [0.006, 0.01]])
    np.testing.assert_allclose(stressed_covariance(cov, 2.0), 4 * cov)
    np.testing.assert_allclose(stressed_covariance(cov, 1.0, True), [[0.04, 0.02], [0.02, 0.01]])


def test_overlapping_sums_are_every_h_day_window():
    r = np.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(overlapping_sums(r, 3), [r[i : i + 3].sum(0) for i in range(4)])


@pytest.fixture(scope="module")
def example(data_dir):
    portfolio = load_portfolio(EXAMPLES / "portfolio.yaml")
    return portfolio, load_market_history(data_dir, portfolio.underlyings, portfolio.as_of)


def test_hs_var_of_the_example_equals_the_quantile_of_its_revalued_history(example):
    portfolio, history = example
    risk = measure(portfolio, history, RiskSettings(Method.HS))
    assert risk.pnl.size == 1000
    var, es = var_es(risk.pnl, (0.95, 0.99, 0.995))
    np.testing.assert_allclose(risk.table["var"], var, rtol=1e-12)
    np.testing.assert_allclose(risk.table["es"], es, rtol=1e-12)
    ten_day = measure(portfolio, history, RiskSettings(Method.HS, horizon_days=10))
    assert ten_day.table["scenarios"].iloc[0] == 991
    assert (ten_day.table["var"] > risk.table["var"]).all()


def test_parametric_method_refuses_options_and_prices_linear_books(example):
    portfolio, history = example
    with pytest.raises(ValueError, match="BTC-26JUN26-66000-P"):
        measure(portfolio, history, RiskSettings(Method.EWMA))
    linear = dataclasses.replace(
        portfolio, positions=tuple(p for p in portfolio.positions if p.option is None)
    )
    normal = measure(linear, history, RiskSettings(Method.EWMA))
    student = measure(linear, history, RiskSettings(Method.EWMA, innovation=Innovation.STUDENT_T))
    assert student.dof is not None and 2.0 < student.dof < 10.0
    assert student.table["es"].iloc[1] > normal.table["es"].iloc[1]


def test_monte_carlo_and_fhs_are_reproducible_from_the_seed(example):
    portfolio, history = example
    settings = RiskSettings(Method.MC, innovation=Innovation.STUDENT_T, paths=5000, seed=9)
    a = measure(portfolio, history, settings).table
    assert a.equals(measure(portfolio, history, settings).table)
    fhs = measure(portfolio, history, RiskSettings(Method.FHS, horizon_days=10, paths=3000))
    assert fhs.table["scenarios"].iloc[0] == 3000
    assert (fhs.table["es"] >= fhs.table["var"]).all()


def test_a_book_of_portfolios_equals_each_valued_alone_and_a_total_row(example):
    portfolio, history = example
    linear = dataclasses.replace(
        portfolio,
        name="linear-only",
        positions=tuple(p for p in portfolio.positions if p.option is None),
    )
    settings = RiskSettings(Method.HS, confidences=(0.99,))
    book = measure_book([portfolio, linear], history, settings)
    for index, single in enumerate((portfolio, linear)):
        alone = measure(single, history, settings).table
        row = book.table.iloc[index]
        assert row["portfolio"] == single.name
        assert (row["var"], row["es"]) == (alone["var"].iloc[0], alone["es"].iloc[0])
    # the shared spot / perpetual columns are one instrument each
    assert len(book.instruments) == len(portfolio.positions)
    with pytest.raises(ValueError, match="unique"):
        measure_book([portfolio, portfolio], history, settings)
