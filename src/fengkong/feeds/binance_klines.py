"""Readers for Binance candlestick (kline) CSV files in the three layouts found in practice.

* ``BINANCE_KLINE``: Binance public-data (``data.binance.vision``) spot and futures klines,
  12 columns ``open_time, open, high, low, close, volume, close_time, quote_volume, count,
  taker_buy_volume, taker_buy_quote_volume, ignore``; times in ms since epoch (UTC). Older
  monthly files have no header line, newer ones start with that header; both are accepted.
* ``SPOT_HOURLY``: hourly spot bars with the header ``timestamp, open, high, low, close,
  volume, datetime`` (``timestamp`` = bar open in ms UTC).
* ``CRYPTODATADOWNLOAD_DAILY``: CryptoDataDownload daily files: line 1 is the site's URL,
  line 2 the header ``Unix, Date, Symbol, Open, High, Low, Close, Volume <SYM>, Volume USDT,
  tradecount``, rows newest first.

Two views of the same rows:

* :func:`iter_klines` yields :class:`RawKline` rows with the prices and volume kept as the
  file's original decimal strings (for turning into exact integer price events);
* :func:`read_klines` returns a pandas DataFrame of floats indexed by the bar's open time
  (UTC), for analytics.

Both return bars in ascending open time whatever the file's order, and refuse a file with a
malformed number, a duplicated or out-of-order time, naming the file, line, field and value.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = [
    "KlineFileError",
    "KlineFormat",
    "RawKline",
    "detect_format",
    "iter_klines",
    "read_klines",
]

_BINANCE_HEADER = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_SPOT_HOURLY_HEADER = ("timestamp", "open", "high", "low", "close", "volume", "datetime")
_CDD_URL_PREFIX = "https://www.cryptodatadownload.com"
_PRICE_FIELDS = ("open", "high", "low", "close", "volume")


class KlineFormat(enum.StrEnum):
    BINANCE_KLINE = "binance_kline"
    SPOT_HOURLY = "spot_hourly"
    CRYPTODATADOWNLOAD_DAILY = "cryptodatadownload_daily"


class KlineFileError(ValueError):
    """A kline file that cannot be read as stated; the message names file, line, field, value."""


class RawKline(NamedTuple):
    """One bar as written in the file: open time in ms (UTC) and decimal strings."""

    open_time_ms: int
    open: str
    high: str
    low: str
    close: str
    volume: str


def detect_format(path: Path | str) -> KlineFormat:
    """The layout of ``path``, from its first line (see the module docstring)."""
    path = Path(path)
    with path.open(newline="") as handle:
        first = handle.readline().strip()
    if not first:
        raise KlineFileError(f"{path}: line 1 is empty; expected a kline header or row")
    if first.lower().startswith(_CDD_URL_PREFIX):
        return KlineFormat.CRYPTODATADOWNLOAD_DAILY
    fields = tuple(field.strip() for field in first.split(","))
    if fields == _BINANCE_HEADER or (len(fields) == len(_BINANCE_HEADER) and fields[0].isdigit()):
        return KlineFormat.BINANCE_KLINE
    if fields == _SPOT_HOURLY_HEADER:
        return KlineFormat.SPOT_HOURLY
    raise KlineFileError(f"{path}: line 1 = {first[:120]!r} matches no known kline layout")


def _check_decimal(path: Path, line: int, field: str, value: str) -> str:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise KlineFileError(f"{path}:{line}: {field}={value!r} is not a decimal number") from None
    if not number.is_finite() or number < 0:
        raise KlineFileError(f"{path}:{line}: {field}={value!r} must be finite and >= 0")
    return value


def _check_time(path: Path, line: int, field: str, value: str) -> int:
    if not value.isdigit():
        raise KlineFileError(f"{path}:{line}: {field}={value!r} is not a time in ms")
    return int(value)


def _rows(path: Path, fmt: KlineFormat) -> Iterator[tuple[int, RawKline]]:
    """(line number, row) in file order."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        for index, fields in enumerate(reader, start=1):
            if fmt is KlineFormat.BINANCE_KLINE:
                if index == 1 and fields and fields[0] == "open_time":
                    continue
                expected, time_field, columns = len(_BINANCE_HEADER), "open_time", (1, 2, 3, 4, 5)
            elif fmt is KlineFormat.SPOT_HOURLY:
                if index == 1:
                    continue
                expected, time_field, columns = (
                    len(_SPOT_HOURLY_HEADER),
                    "timestamp",
                    (1, 2, 3, 4, 5),
                )
            else:
                if index <= 2:
                    continue
                expected, time_field, columns = 10, "Unix", (3, 4, 5, 6, 7)
            if len(fields) != expected:
                raise KlineFileError(
                    f"{path}:{index}: {len(fields)} columns, expected {expected} for {fmt.value}"
                )
            open_time = _check_time(path, index, time_field, fields[0])
            values = [
                _check_decimal(path, index, name, fields[column])
                for name, column in zip(_PRICE_FIELDS, columns, strict=True)
            ]
            yield index, RawKline(open_time, *values)


def iter_klines(path: Path | str) -> Iterator[RawKline]:
    """Every bar of ``path`` in ascending open time, prices as the original decimal strings."""
    path = Path(path)
    fmt = detect_format(path)
    rows = list(_rows(path, fmt))
    if fmt is KlineFormat.CRYPTODATADOWNLOAD_DAILY:
        rows.reverse()
    previous: int | None = None
    for line, row in rows:
        if previous is not None and row.open_time_ms <= previous:
            raise KlineFileError(
                f"{path}:{line}: open time {row.open_time_ms} is not after the previous bar's "
                f"{previous} (duplicate or out of order)"
            )
        previous = row.open_time_ms
        yield row


def read_klines(path: Path | str) -> pd.DataFrame:
    """Bars of ``path`` as floats: columns open, high, low, close, volume; index ``open_time``.

    The index is a UTC ``DatetimeIndex`` in ascending order.
    """
    rows = list(iter_klines(path))
    times = np.fromiter((row.open_time_ms for row in rows), dtype=np.int64, count=len(rows))
    frame = pd.DataFrame(
        {
            field: np.fromiter(
                (float(getattr(row, field)) for row in rows), dtype=np.float64, count=len(rows)
            )
            for field in _PRICE_FIELDS
        },
        index=pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="open_time"),
    )
    return frame
