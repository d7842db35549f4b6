"""Binance USDⓈ-M funding-rate history CSV (``data.binance.vision .../fundingRate/``).

Header ``calc_time,funding_interval_hours,last_funding_rate``; ``calc_time`` is the settlement
time in ms UTC (it may carry a few ms of jitter, e.g. ``…00005``), the rate a decimal fraction
paid per interval (positive: longs pay shorts). Rows are returned in file order with the rate
as a plain decimal string: Binance writes some small rates in exponent form (``8.4E-7``), which
is rewritten exactly (``0.00000084``). A malformed row raises :class:`FeedFormatError` naming
file, line, field and value.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

__all__ = ["FUNDING_HEADER", "FeedFormatError", "FundingRecord", "iter_funding", "settlement_time"]

FUNDING_HEADER = ("calc_time", "funding_interval_hours", "last_funding_rate")
_HOUR_MS = 3_600_000


class FeedFormatError(ValueError):
    """A published file that does not read as documented; names file, line, field and value."""

    def __init__(self, path: Path, line: int, field: str, value: object, reason: str) -> None:
        self.path, self.line, self.field, self.value = path, line, field, value
        super().__init__(f"{path}:{line}: {field}={value!r}: {reason}")


class FundingRecord(NamedTuple):
    calc_time: int
    interval_hours: int
    rate: str


def settlement_time(calc_time: int) -> int:
    """The scheduled settlement hour of a ``calc_time`` with jitter (nearest whole hour)."""
    return (calc_time + _HOUR_MS // 2) // _HOUR_MS * _HOUR_MS


def iter_funding(path: Path | str) -> Iterator[FundingRecord]:
    """Every row of a Binance funding-rate history file, in file order, checked to ascend."""
    path = Path(path)
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != FUNDING_HEADER:
            raise FeedFormatError(path, 1, "header", header, f"expected {','.join(FUNDING_HEADER)}")
        previous = -1
        for line, fields in enumerate(reader, start=2):
            if len(fields) != 3:
                raise FeedFormatError(path, line, "row", fields, "expected 3 columns")
            time_text, hours_text, rate = fields
            if not time_text.isdigit() or int(time_text) <= previous:
                raise FeedFormatError(
                    path, line, "calc_time", time_text, "not an ascending ms time"
                )
            if not hours_text.isdigit() or int(hours_text) not in (1, 2, 4, 8):
                raise FeedFormatError(
                    path, line, "funding_interval_hours", hours_text, "not 1/2/4/8"
                )
            try:
                value = Decimal(rate)
            except InvalidOperation:
                value = None
            if value is None or not value.is_finite():
                raise FeedFormatError(path, line, "last_funding_rate", rate, "not a decimal")
            previous = int(time_text)
            yield FundingRecord(previous, int(hours_text), _plain(value))


def _plain(value: Decimal) -> str:
    """Exact positional text of ``value`` without superfluous zeros (``8.4E-7`` ->
    ``0.00000084``, ``-0.00010000`` -> ``-0.0001``, ``0E-8`` -> ``0``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
