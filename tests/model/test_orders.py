"""fengkong.model.orders: the order record and its open/remaining views."""

from __future__ import annotations

import msgspec

from fengkong.model.orders import Order, OrderStatus


def test_order_tracks_remaining_quantity_and_round_trips_as_msgpack() -> None:
    order = Order(
        order_id="o1", account="alice", symbol="BTCUSDT-PERP", side="buy", type="limit",
        time_in_force="gtc", qty=1_500, price=600_000,
    )  # fmt: skip
    order.filled_qty = 400
    order.status = OrderStatus.PARTIALLY_FILLED
    assert order.remaining_qty == 1_100
    assert order.is_open
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(order), type=Order)
    assert decoded == order
    decoded.status = OrderStatus.FILLED
    assert not decoded.is_open


def test_order_fields_are_validated_on_decode() -> None:
    raw = msgspec.json.encode(
        {"order_id": "o", "account": "a", "symbol": "X", "side": "hold", "type": "limit",
         "time_in_force": "gtc", "qty": 1}
    )  # fmt: skip
    try:
        msgspec.json.decode(raw, type=Order)
    except msgspec.ValidationError as err:
        assert "side" in str(err)
    else:
        raise AssertionError("an invalid side must not decode")
