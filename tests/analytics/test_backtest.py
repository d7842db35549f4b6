"""Kupiec, Christoffersen and the Basel traffic light, by hand and on real history."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fengkong.analytics.backtest import (
    Zone,
    christoffersen_conditional_coverage,
    christoffersen_independence,
    exceptions,
    kupiec_pof,
    traffic_light,
    transition_counts,
)
from fengkong.analytics.measure import Method
from fengkong.analytics.returns import align_prices
from fengkong.analytics.rolling import backtest_summary, rolling_var

# 250 days, 7 exceptions, two of them clustered (days 10-11 and 120-122)
HIT_DAYS = [10, 11, 50, 120, 121, 122, 200]


@pytest.fixture
def hits() -> np.ndarray:
    series = np.zeros(250, dtype=bool)
    series[HIT_DAYS] = True
    return series


def chi2_sf_1(x: float) -> float:
    return math.erfc(math.sqrt(x / 2.0))  # χ²(1) survival function, closed form


def test_kupiec_equals_the_hand_computation(hits):
    t, x, p = 250, 7, 0.01
    by_hand = -2.0 * (
        (t - x) * math.log(1 - p)
        + x * math.log(p)
        - (t - x) * math.log(1 - x / t)
        - x * math.log(x / t)
    )
    result = kupiec_pof(hits, p)
    assert result.statistic == pytest.approx(by_hand, rel=1e-12)
    assert result.statistic == pytest.approx(5.4970, abs=5e-5)
    assert result.pvalue == pytest.approx(chi2_sf_1(by_hand), rel=1e-10)
    assert result.df == 1


def test_christoffersen_equals_the_hand_computation(hits):
    # transitions counted by eye: 0→1 at days 10, 50, 120, 200; 1→1 at 11, 121, 122;
    # 1→0 after 11, 50, 122, 200; the rest 0→0
    n01, n11, n10 = 4, 3, 4
    n00 = 249 - n01 - n11 - n10
    assert transition_counts(hits) == (n00, n01, n10, n11)
    pi01, pi11, pi = n01 / (n00 + n01), n11 / (n10 + n11), (n01 + n11) / 249
    log_null = (n00 + n10) * math.log(1 - pi) + (n01 + n11) * math.log(pi)
    log_alt = (
        n00 * math.log(1 - pi01)
        + n01 * math.log(pi01)
        + n10 * math.log(1 - pi11)
        + n11 * math.log(pi11)
    )
    by_hand = -2.0 * (log_null - log_alt)
    independence = christoffersen_independence(hits)
    assert independence.statistic == pytest.approx(by_hand, rel=1e-12)
    assert independence.pvalue == pytest.approx(chi2_sf_1(by_hand), rel=1e-10)
    joint = christoffersen_conditional_coverage(hits, 0.01)
    assert joint.statistic == pytest.approx(by_hand + kupiec_pof(hits, 0.01).statistic, rel=1e-12)
    assert joint.pvalue == pytest.approx(math.exp(-joint.statistic / 2.0), rel=1e-10)  # χ²(2)
    assert joint.df == 2


def test_no_exceptions_and_no_clustering_edge_cases():
    quiet = np.zeros(100, dtype=bool)
    assert kupiec_pof(quiet, 0.01).statistic == pytest.approx(-2 * 100 * math.log(0.99))
    assert christoffersen_independence(quiet).statistic == 0.0
    last_day_only = quiet.copy()
    last_day_only[-1] = True  # no transition out of an exception: π11 has no data
    assert christoffersen_independence(last_day_only).statistic >= 0.0


def test_traffic_light_reproduces_basel_1996_table_2():
    """BCBS (1996) Table 2, 250 days at 99%: cumulative probabilities and zones."""
    published = [8.11, 28.58, 54.32, 75.81, 89.22, 95.88, 98.63, 99.60, 99.89, 99.97, 99.99]
    zones = [Zone.GREEN] * 5 + [Zone.YELLOW] * 5 + [Zone.RED]
    plus = [0.0] * 5 + [0.40, 0.50, 0.65, 0.75, 0.85, 1.00]
    for count, (cumulative, zone, factor) in enumerate(zip(published, zones, plus, strict=True)):
        light = traffic_light(count)
        assert round(100 * light.cumulative_probability, 2) == cumulative
        assert light.zone is zone
        assert light.plus_factor == factor
    assert traffic_light(30, 2887, 0.01).plus_factor is None


def test_exception_is_a_loss_strictly_beyond_var():
    assert exceptions(np.array([-1.0, -1.5, 2.0]), np.array([1.0, 1.0, 1.0])).tolist() == [
        False,
        True,
        False,
    ]


@pytest.fixture(scope="module")
def btc_returns(daily_closes) -> pd.DataFrame:
    return align_prices(daily_closes[["BTC"]]).returns()


def test_rolling_forecasts_use_only_the_past(btc_returns):
    sample = btc_returns.loc["2021-01-01":"2022-12-31"]
    base = rolling_var(sample, [1e6], 0.99, (Method.EWMA, Method.HS, Method.FHS), window=250)
    altered = sample.copy()
    altered.iloc[400:] *= 3.0  # change the future after day 400
    again = rolling_var(altered, [1e6], 0.99, (Method.EWMA, Method.HS, Method.FHS), window=250)
    day = 400 - 250  # first forecast row is day 250 of the sample
    for column in ("var_ewma", "var_hs"):
        assert np.array_equal(base[column].iloc[: day + 1], again[column].iloc[: day + 1])
    # FHS re-estimates every 20 days on the window before the re-estimation day
    assert np.array_equal(base["var_fhs"].iloc[:140], again["var_fhs"].iloc[:140])
    assert (base.filter(like="var_") > 0).all().all()


def test_rolling_backtest_on_real_btc_reports_counts_pvalues_and_zones(btc_returns):
    forecasts = rolling_var(btc_returns, [1e6], 0.99, (Method.EWMA, Method.HS), window=250)
    summary = backtest_summary(forecasts, 0.99)
    assert forecasts.index[0] == pd.Timestamp("2018-04-25", tz="UTC")
    for method in ("ewma", "hs"):
        hits = forecasts["pnl"] < -forecasts[f"var_{method}"]
        row = summary.loc[method]
        assert row["exceptions"] == hits.sum()
        assert row["days"] == len(forecasts)
        assert row["kupiec_p"] == pytest.approx(kupiec_pof(hits.to_numpy(), 0.01).pvalue)
        assert row["zone"] == traffic_light(int(hits.sum()), len(hits), 0.01).zone.value
        assert row["exceptions_last_250"] == hits.iloc[-250:].sum()
    # the documented result: normal EWMA under-covers BTC's fat tails, HS does not
    assert summary.loc["ewma", "exceptions"] == 59
    assert summary.loc["ewma", "zone"] == "red"
    assert summary.loc["hs", "exceptions"] == 29
    assert summary.loc["hs", "kupiec_p"] > 0.05
