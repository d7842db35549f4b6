"""Where the real market history lives and which file holds what.

The files are the public Binance data set described in ``shared/data/README.md``. They are
read through :mod:`fengkong.feeds.binance_klines`; nothing here parses CSV.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from fengkong.feeds.binance_klines import read_klines

__all__ = [
    "CRASH_DATES",
    "CRASH_WINDOWS_1M",
    "DAILY_ASSETS",
    "SPOT_HOURLY_FILES",
    "DataDirError",
    "daily_file",
    "load_daily_bars",
    "load_daily_closes",
    "load_hourly_bars",
    "load_minute_bars",
    "resolve_data_dir",
]

DATA_DIR_ENV = "FENGKONG_DATA"

DAILY_ASSETS: tuple[str, ...] = ("BTC", "ETH", "BNB", "SOL", "XRP", "DOGE", "ADA", "TRX", "BCH")
"""The 9-asset basket of daily Binance spot candles (``binance-spot-daily-<sym>usdt.csv``)."""

CRASH_DATES: tuple[str, ...] = ("2020-03-12", "2021-05-19", "2022-11-08", "2025-10-10")
"""Days of the four crashes the historical stress scenarios replay."""

CRASH_WINDOWS_1M: dict[str, str] = {
    "2020-03-12": "btcusdt-perp-1m-2020-03-12-black-thursday.csv",
    "2021-05-19": "btcusdt-perp-1m-2021-05-19-crash.csv",
    "2022-11-08": "btcusdt-perp-1m-2022-11-08-ftx.csv",
    "2025-10-10": "btcusdt-perp-1m-2025-10-10-cascade.csv",
}
"""1-minute BTCUSDT perpetual klines around each crash, keyed by crash day."""

SPOT_HOURLY_FILES: dict[tuple[str, str], str] = {
    ("BTC", "2022-11"): "binance-spot-1h-btcusdt-2022-11.csv",
    ("ETH", "2022-11"): "binance-spot-1h-ethusdt-2022-11.csv",
    ("BTC", "2025-10"): "binance-spot-1h-btcusdt-2025-10.csv",
    ("ETH", "2025-10"): "binance-spot-1h-ethusdt-2025-10.csv",
}
"""Hourly Binance spot bars, keyed by (asset, month)."""


class DataDirError(FileNotFoundError):
    """The market-data folder or one of its files is missing."""


def resolve_data_dir(explicit: Path | str | None = None) -> Path:
    """The market-data folder: ``explicit``, else ``$FENGKONG_DATA``, else ``../shared/data``.

    The last default is the layout of a development checkout: ``shared/data`` beside the
    repository root, which sits three levels above ``src/fengkong/analytics``.
    """
    if explicit is not None:
        candidate = Path(explicit)
    elif os.environ.get(DATA_DIR_ENV):
        candidate = Path(os.environ[DATA_DIR_ENV])
    else:
        candidate = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    if not candidate.is_dir():
        raise DataDirError(
            f"market data folder {candidate} does not exist; pass --data-dir or set {DATA_DIR_ENV}"
        )
    return candidate.resolve()


def _existing(data_dir: Path, name: str) -> Path:
    path = Path(data_dir) / name
    if not path.is_file():
        raise DataDirError(f"market data file {path} does not exist")
    return path


def daily_file(data_dir: Path, asset: str) -> Path:
    """Path of the daily candle file of ``asset`` (e.g. ``BTC``)."""
    return _existing(data_dir, f"binance-spot-daily-{asset.lower()}usdt.csv")


def load_daily_bars(data_dir: Path, asset: str) -> pd.DataFrame:
    """Daily OHLCV of ``asset`` against USDT, indexed by day open (UTC), ascending."""
    return read_klines(daily_file(data_dir, asset))


def load_daily_closes(data_dir: Path, assets: Sequence[str] = DAILY_ASSETS) -> pd.DataFrame:
    """Daily closes, one column per asset, on the union of the assets' days (NaN where absent)."""
    closes = {asset: load_daily_bars(data_dir, asset)["close"] for asset in assets}
    return pd.DataFrame(closes).sort_index()


def load_hourly_bars(data_dir: Path, asset: str, month: str) -> pd.DataFrame:
    """Hourly spot OHLCV of ``asset`` for ``month`` (``YYYY-MM``)."""
    try:
        name = SPOT_HOURLY_FILES[(asset, month)]
    except KeyError:
        have = ", ".join(f"{a} {m}" for a, m in SPOT_HOURLY_FILES)
        raise DataDirError(
            f"no hourly file for asset={asset!r} month={month!r}; have {have}"
        ) from None
    return read_klines(_existing(data_dir, name))


def load_minute_bars(data_dir: Path, crash_day: str) -> pd.DataFrame:
    """1-minute BTCUSDT perpetual OHLCV around the crash of ``crash_day`` (``YYYY-MM-DD``)."""
    try:
        name = CRASH_WINDOWS_1M[crash_day]
    except KeyError:
        have = ", ".join(CRASH_WINDOWS_1M)
        raise DataDirError(f"no 1-minute file for crash_day={crash_day!r}; have {have}") from None
    return read_klines(_existing(data_dir, name))
