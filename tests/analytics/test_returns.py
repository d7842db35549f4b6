"""Alignment of real daily and hourly histories, gap reporting, log and simple returns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fengkong.analytics.history import load_hourly_bars
from fengkong.analytics.returns import align_prices, log_returns, simple_returns

README_MISSING_DAYS = [
    "2026-01-08",
    "2026-01-20",
    "2026-03-20",
    "2026-03-21",
    "2026-03-22",
    "2026-03-25",
]


def test_daily_basket_reports_the_six_missing_days_of_the_readme(daily_closes):
    aligned = align_prices(daily_closes)
    report = aligned.report
    assert report.common_start == pd.Timestamp("2020-08-11", tz="UTC")  # SOL's listing
    missing = sorted({bar.date().isoformat() for bar in report.missing["bar"]})
    assert missing == README_MISSING_DAYS
    assert len(report.missing) == 6 * 9
    assert (report.coverage["missing_inside_span"] == 6).all()
    assert report.gap_returns["periods"].tolist() == [2.0, 2.0, 4.0, 2.0]
    assert "4 returns span a gap (drop)" in report.describe()


def test_gap_policy_drops_or_keeps_the_multi_day_returns(daily_closes):
    dropped = align_prices(daily_closes[["BTC"]], gap_policy="drop").returns()
    kept = align_prices(daily_closes[["BTC"]], gap_policy="keep").returns()
    assert len(kept) - len(dropped) == 4
    after_gap = pd.Timestamp("2026-03-23", tz="UTC")  # previous bar 2026-03-19
    assert after_gap not in dropped.index
    closes = daily_closes["BTC"]
    expected = np.log(closes[after_gap] / closes[pd.Timestamp("2026-03-19", tz="UTC")])
    assert kept.loc[after_gap, "BTC"] == pytest.approx(expected, rel=1e-15)


def test_window_restricts_and_each_asset_starts_at_its_listing(daily_closes):
    aligned = align_prices(
        daily_closes[["BTC", "ETH", "BNB"]], start="2018-01-01", end="2019-12-31"
    )
    assert aligned.prices.index[0] == pd.Timestamp("2018-01-01", tz="UTC")
    assert aligned.prices.index[-1] == pd.Timestamp("2019-12-31", tz="UTC")
    assert aligned.report.missing.empty
    with pytest.raises(ValueError, match="prices\\['SOL'\\]: no price"):
        align_prices(daily_closes[["BTC", "SOL"]], end="2019-12-31")


def test_hourly_btc_and_eth_align_on_every_hour_of_november_2022(data_dir):
    closes = pd.DataFrame(
        {a: load_hourly_bars(data_dir, a, "2022-11")["close"] for a in ("BTC", "ETH")}
    )
    aligned = align_prices(closes, frequency="1h")
    assert len(aligned.prices) == 720
    assert aligned.report.missing.empty and aligned.report.gap_returns.empty
    r = aligned.returns("log")
    worst = r["BTC"].idxmin()
    assert worst.date().isoformat() in ("2022-11-08", "2022-11-09")


def test_simple_return_is_exp_of_log_return_minus_one():
    prices = pd.Series([100.0, 110.0, 99.0])
    np.testing.assert_allclose(simple_returns(prices), [0.1, -0.1], rtol=1e-14)
    np.testing.assert_allclose(np.expm1(log_returns(prices)), simple_returns(prices), rtol=1e-14)


def test_a_missing_data_folder_or_file_is_named_with_the_way_to_fix_it(tmp_path, monkeypatch):
    from fengkong.analytics.history import DataDirError, load_minute_bars, resolve_data_dir

    monkeypatch.setenv("FENGKONG_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataDirError, match="nowhere does not exist; pass --data-dir or set"):
        resolve_data_dir()
    assert resolve_data_dir(tmp_path) == tmp_path.resolve()
    with pytest.raises(DataDirError, match="no 1-minute file for crash_day='2019-01-01'"):
        load_minute_bars(tmp_path, "2019-01-01")
