"""Deribit option-chain CSV as collected from ``public/get_instruments`` + ``public/ticker``.

Header (25 columns): ``instrument_name, currency, type, strike, expiration_timestamp,
expiration, creation_timestamp, contract_size, tick_size, min_trade_amount, spot_ref,
mark_price, best_bid_price, best_ask_price, underlying_price, mark_iv, bid_iv, ask_iv,
open_interest, volume, volume_usd, delta, gamma, theta, vega``. Option prices are in BTC (inverse
options), ``underlying_price`` in USD (the expiry's future or synthetic), IVs in percent, Greeks
under Deribit's conventions (:mod:`fengkong.market.deribit`). Every number is kept as the
published text; :attr:`DeribitOption.f` gives float views for analytics.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

from fengkong.feeds.binance_funding import FeedFormatError
from fengkong.model.enums import OptionKind

__all__ = ["DERIBIT_HEADER", "DeribitOption", "iter_deribit_options"]

DERIBIT_HEADER = (
    "instrument_name", "currency", "type", "strike", "expiration_timestamp", "expiration",
    "creation_timestamp", "contract_size", "tick_size", "min_trade_amount", "spot_ref",
    "mark_price", "best_bid_price", "best_ask_price", "underlying_price", "mark_iv", "bid_iv",
    "ask_iv", "open_interest", "volume", "volume_usd", "delta", "gamma", "theta", "vega",
)  # fmt: skip
_NUMERIC = (
    "strike", "contract_size", "tick_size", "min_trade_amount", "spot_ref", "mark_price",
    "best_bid_price", "best_ask_price", "underlying_price", "mark_iv", "bid_iv", "ask_iv",
    "open_interest", "volume", "volume_usd", "delta", "gamma", "theta", "vega",
)  # fmt: skip


class DeribitOption(NamedTuple):
    """One row; ``values`` maps each numeric column to its published decimal text."""

    instrument_name: str
    currency: str
    kind: OptionKind
    expiration_timestamp: int
    creation_timestamp: int
    values: dict[str, str]

    def f(self, column: str) -> float:
        return float(self.values[column])


def iter_deribit_options(path: Path | str) -> Iterator[DeribitOption]:
    path = Path(path)
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header) != DERIBIT_HEADER:
            raise FeedFormatError(path, 1, "header", header, "not the Deribit chain header")
        for line, fields in enumerate(reader, start=2):
            if len(fields) != len(DERIBIT_HEADER):
                raise FeedFormatError(path, line, "row", len(fields), "expected 25 columns")
            row = dict(zip(DERIBIT_HEADER, fields, strict=True))
            for column in _NUMERIC:
                try:
                    ok = Decimal(row[column]).is_finite()
                except InvalidOperation:
                    ok = False
                if not ok:
                    raise FeedFormatError(path, line, column, row[column], "not a decimal")
            for column in ("expiration_timestamp", "creation_timestamp"):
                if not row[column].isdigit():
                    raise FeedFormatError(path, line, column, row[column], "not ms")
            if row["type"] not in ("call", "put"):
                raise FeedFormatError(path, line, "type", row["type"], "expected call or put")
            yield DeribitOption(
                instrument_name=row["instrument_name"],
                currency=row["currency"],
                kind=OptionKind(row["type"]),
                expiration_timestamp=int(row["expiration_timestamp"]),
                creation_timestamp=int(row["creation_timestamp"]),
                values={column: row[column] for column in _NUMERIC},
            )
