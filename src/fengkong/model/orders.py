"""Orders as the risk engine holds them once admitted: every number in integer units.

Prices at the instrument's price scale, quantities in contracts at its quantity scale (see
:mod:`fengkong.model.instruments`). ``filled_qty`` grows with each fill; an order is open while
``status`` is ``NEW`` or ``PARTIALLY_FILLED``. Fills themselves are
:class:`fengkong.model.events.Fill` events.
"""

from __future__ import annotations

import enum

import msgspec

from fengkong.model.enums import OrderType, PositionSide, Side, TimeInForce


class OrderStatus(enum.StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


OPEN_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})


class Order(msgspec.Struct, kw_only=True, gc=False):
    order_id: str
    account: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    qty: int
    price: int | None = None  # None for market orders
    filled_qty: int = 0
    reduce_only: bool = False
    position_side: PositionSide = PositionSide.BOTH
    status: OrderStatus = OrderStatus.NEW
    created_ts: int = 0

    @property
    def remaining_qty(self) -> int:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES
