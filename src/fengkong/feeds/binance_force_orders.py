"""Binance USDⓈ-M forced-order (liquidation) records from the ``!forceOrder@arr`` stream.

The recorder's CSV (``binance-um-forceorder-stream-*.csv``) has no header and 12 columns:
``symbol`` (with ``USDT`` removed: ``BTC`` is BTCUSDT), ``side`` (``SELL``: a long was
liquidated), ``order_type``, ``time_in_force``, ``original_quantity``, ``price``,
``average_price``, ``order_status``, ``order_last_filled_quantity``,
``order_filled_accumulated_quantity``, ``order_trade_time`` (ms UTC) and ``usd_size`` (the
recorder's float product, kept as text). Numbers stay as the published decimal strings.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

from fengkong.feeds.binance_funding import FeedFormatError
from fengkong.model.enums import Side

__all__ = ["ForceOrder", "iter_force_orders"]

_DECIMAL_COLUMNS = (
    (4, "original_quantity"),
    (5, "price"),
    (6, "average_price"),
    (8, "order_last_filled_quantity"),
    (9, "order_filled_accumulated_quantity"),
)


class ForceOrder(NamedTuple):
    symbol: str
    side: Side
    order_type: str
    time_in_force: str
    qty: str
    price: str
    average_price: str
    status: str
    last_filled_qty: str
    filled_qty: str
    trade_time: int
    usd_size: str


def iter_force_orders(path: Path | str, quote: str = "USDT") -> Iterator[ForceOrder]:
    """Every record in file order; ``symbol`` gets ``quote`` back (``BTC`` -> ``BTCUSDT``)."""
    path = Path(path)
    with path.open(newline="") as handle:
        for line, fields in enumerate(csv.reader(handle), start=1):
            if len(fields) != 12:
                raise FeedFormatError(path, line, "row", fields, "expected 12 columns")
            if fields[1] not in ("BUY", "SELL"):
                raise FeedFormatError(path, line, "side", fields[1], "expected BUY or SELL")
            for column, name in _DECIMAL_COLUMNS:
                try:
                    ok = Decimal(fields[column]).is_finite() and Decimal(fields[column]) >= 0
                except InvalidOperation:
                    ok = False
                if not ok:
                    raise FeedFormatError(path, line, name, fields[column], "not a decimal >= 0")
            if not fields[10].isdigit():
                raise FeedFormatError(path, line, "order_trade_time", fields[10], "not ms")
            yield ForceOrder(
                symbol=fields[0] + quote,
                side=Side.BUY if fields[1] == "BUY" else Side.SELL,
                order_type=fields[2],
                time_in_force=fields[3],
                qty=fields[4],
                price=fields[5],
                average_price=fields[6],
                status=fields[7],
                last_filled_qty=fields[8],
                filled_qty=fields[9],
                trade_time=int(fields[10]),
                usd_size=fields[11],
            )
