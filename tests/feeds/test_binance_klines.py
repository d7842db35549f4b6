"""Kline readers against the real Binance files (shared/data README §1–3) and broken files."""

from __future__ import annotations

import pandas as pd
import pytest

from fengkong.feeds.binance_klines import (
    KlineFileError,
    KlineFormat,
    RawKline,
    detect_format,
    iter_klines,
    read_klines,
)


def test_each_layout_is_recognised_from_its_first_line(shared_data):
    assert detect_format(shared_data / "btcusdt-perp-1m-2020-03-12-black-thursday.csv") is (
        KlineFormat.BINANCE_KLINE
    )
    assert detect_format(shared_data / "btcusdt-perp-1m-2022-11-08-ftx.csv") is (
        KlineFormat.BINANCE_KLINE
    )
    assert detect_format(shared_data / "binance-spot-1h-btcusdt-2022-11.csv") is (
        KlineFormat.SPOT_HOURLY
    )
    assert detect_format(shared_data / "binance-spot-daily-btcusdt.csv") is (
        KlineFormat.CRYPTODATADOWNLOAD_DAILY
    )


def test_daily_file_is_returned_oldest_first_with_readme_range_and_row_count(shared_data):
    bars = read_klines(shared_data / "binance-spot-daily-btcusdt.csv")
    assert len(bars) == 3142
    assert bars.index.is_monotonic_increasing
    assert str(bars.index.tz) == "UTC"
    assert bars.index[0] == pd.Timestamp("2017-08-17", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2026-03-30", tz="UTC")
    assert bars.loc["2017-08-17", "close"].item() == 4285.08
    assert bars.loc["2026-03-30", "close"].item() == 66797.37


def test_headerless_minute_file_shows_black_thursday_low_of_3621_81(shared_data):
    """README §1: 'On 2020-03-13 at 02:16 it reached 3621.81' (perpetual)."""
    bars = read_klines(shared_data / "btcusdt-perp-1m-2020-03-12-black-thursday.csv")
    assert len(bars) == 1140
    assert bars["low"].min() == 3621.81
    assert bars["low"].idxmin() == pd.Timestamp("2020-03-13 02:16", tz="UTC")
    assert (bars.index.to_series().diff().dropna() == pd.Timedelta(minutes=1)).all()


def test_minute_file_with_header_shows_ftx_low_of_16830(shared_data):
    """README §1: 'the collapse to 16830.0 at 19:32' on 2022-11-08."""
    bars = read_klines(shared_data / "btcusdt-perp-1m-2022-11-08-ftx.csv")
    assert len(bars) == 720
    assert bars["low"].min() == 16830.0
    assert bars["low"].idxmin() == pd.Timestamp("2022-11-08 19:32", tz="UTC")


def test_hourly_spot_file_covers_the_month_without_gaps(shared_data):
    bars = read_klines(shared_data / "binance-spot-1h-ethusdt-2025-10.csv")
    assert len(bars) == 744
    assert bars.index[0] == pd.Timestamp("2025-10-01 00:00", tz="UTC")
    assert (bars.index.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()


def test_row_iterator_keeps_the_files_decimal_strings(shared_data):
    first = next(iter_klines(shared_data / "btcusdt-perp-1m-2020-03-12-black-thursday.csv"))
    assert first == RawKline(1584003600000, "7382.85", "7383.81", "7369.91", "7381.14", "377.150")
    daily = list(iter_klines(shared_data / "binance-spot-daily-dogeusdt.csv"))
    assert daily[-1].close == "0.09083"
    assert daily[0].open_time_ms < daily[-1].open_time_ms


def _write(tmp_path, text: str):
    path = tmp_path / "klines.csv"
    path.write_text(text)
    return path


def test_duplicate_time_is_refused_with_file_and_line(tmp_path):
    row = "1584003600000,1,2,0.5,1.5,10,1584003659999,15,3,5,7,0\n"
    path = _write(tmp_path, row + row)
    with pytest.raises(KlineFileError, match=r"klines.csv:2: open time 1584003600000 is not after"):
        list(iter_klines(path))


def test_malformed_price_is_refused_naming_field_and_value(tmp_path):
    path = _write(
        tmp_path,
        "timestamp,open,high,low,close,volume,datetime\n"
        "1667260800000,20490.74,20505.62,abc,20456.57,10863.9,2022-11-01 00:00:00\n",
    )
    with pytest.raises(KlineFileError, match=r"klines.csv:2: low='abc' is not a decimal number"):
        read_klines(path)


def test_wrong_column_count_and_unknown_layout_are_refused(tmp_path):
    path = _write(tmp_path, "1584003600000,1,2,0.5,1.5,10,1584003659999,15,3,5,7,0\n1,2,3\n")
    with pytest.raises(KlineFileError, match=r":2: 3 columns, expected 12"):
        list(iter_klines(path))
    other = _write(tmp_path, "RARE,BUY,LIMIT,IOC,4421\n")
    with pytest.raises(KlineFileError, match="matches no known kline layout"):
        detect_format(other)
