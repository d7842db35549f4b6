"""Properties of the gate over random request sequences (hypothesis).

* accepting never makes available margin or a free balance negative;
* a rejected request leaves the state hash unchanged;
* cancelling (OrderDone) releases the reservation exactly: available margin and ledger balances
  return to what they were before the order.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.gate.events import OrderAccepted, OrderDone, OrderRejected, SetLeverage
from tests.factories import gated_engine, gated_exchange, order, run

PERP, SPOT = "BTCUSDT-PERP", "BTCUSDT"

_requests = st.lists(
    st.tuples(
        st.sampled_from([PERP, PERP, SPOT]),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 4000),  # quantity in thousandths
        st.one_of(st.none(), st.integers(-3000, 3000)),  # price offset from 50,000 (None: market)
        st.booleans(),  # reduce-only
    ),
    min_size=1,
    max_size=25,
)


def _balances(ledger, account: str) -> dict[str, tuple[int, int]]:
    return {a: (b.free, b.locked) for a, b in sorted(ledger.accounts[account].balances.items())}


@settings(max_examples=60)
@given(
    requests=_requests,
    wallet=st.integers(50, 20_000),
    position=st.integers(-500, 500),
    leverage=st.sampled_from([1, 5, 20, 50, 125]),
    cancel_every=st.integers(2, 5),
)
def test_random_requests_keep_reservations_exact(
    requests, wallet, position, leverage, cancel_every
) -> None:
    log = gated_exchange(
        {PERP: "50000", SPOT: "50000"},
        {"alice": {"USDT": str(wallet), "BTC": "1"}, "mm": {"USDT": "100000000", "BTC": "100"}},
    )
    if position:
        qty = f"{abs(position) / 1000:.3f}"
        buyer, seller = ("alice", "mm") if position > 0 else ("mm", "alice")
        log.fill(PERP, "50000", qty, buyer=buyer, seller=seller)
    log.make(SetLeverage, account="alice", symbol=PERP, leverage=leverage)
    engine, _ = run(log.events, gated_engine())
    gate, ledger = engine.component("gate"), engine.component("ledger")
    accepted: list[tuple[str, int, dict]] = []
    for i, (symbol, side, thousandths, offset, reduce_only) in enumerate(requests):
        before_hash = engine.state_hash()
        before_available = gate.available_margin("alice", "USDT", log.ts)
        before_balances = _balances(ledger, "alice")
        qty = f"{thousandths / 1000:.3f}"
        price = None if offset is None else str(50_000 + offset)
        outputs = engine.process(
            order(log, f"o{i}", "alice", symbol, side, qty, price,
                  reduce_only=reduce_only and symbol == PERP)
        )  # fmt: skip
        (answer,) = outputs
        if isinstance(answer, OrderRejected):
            assert engine.state_hash() == before_hash
            continue
        assert isinstance(answer, OrderAccepted)
        available = gate.available_margin("alice", "USDT", log.ts)
        assert available >= 0 or available >= before_available  # reduce-only reserves nothing
        held = _balances(ledger, "alice").values()
        assert all(free >= 0 and locked >= 0 for free, locked in held)
        accepted.append((f"o{i}", before_available, before_balances))
        if len(accepted) % cancel_every == 0:
            order_id, available_then, balances_then = accepted.pop()
            engine.process(log.make(OrderDone, order_id=order_id, reason="cancelled"))
            assert gate.available_margin("alice", "USDT", log.ts) == available_then
            assert _balances(ledger, "alice") == balances_then
    for order_id, *_ in reversed(accepted):
        engine.process(log.make(OrderDone, order_id=order_id, reason="expired"))
    assert gate.orders == {}
    assert all(locked == 0 for _, locked in _balances(ledger, "alice").values())


_spot_ops = st.lists(
    st.tuples(
        st.sampled_from(["new", "new", "fill", "fill", "done"]),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 50_000),  # quantity in 0.00001 BTC lots
        st.integers(-500, 0),  # price improvement for fills / offset for new orders, in 0.01
        st.integers(0, 10**6),  # which open order
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60)
@given(ops=_spot_ops)
def test_spot_locks_always_equal_open_reservations_through_fills(ops) -> None:
    """Spot: after every request, fill (naming the order, at its price or better, taker fee at
    the reserved 0.1 %) and completion, the ledger's locked balance of each asset equals the sum
    of the gate's open reservations in it, and the asset totals never change."""
    log = gated_exchange(
        {SPOT: "50000"},
        {"alice": {"USDT": "30000", "BTC": "1"}, "mm": {"USDT": "100000000", "BTC": "1000"}},
    )
    engine, _ = run(log.events, gated_engine())
    gate, ledger = engine.component("gate"), engine.component("ledger")
    totals = ledger.asset_totals()
    for i, (op, side, lots, offset, pick) in enumerate(ops):
        open_ids = sorted(gate.orders)
        if op == "new":
            price = 5_000_000 + offset if side == "buy" else 5_000_000 - offset
            engine.process(order(log, f"o{i}", "alice", SPOT, side, f"{lots / 10**5:.5f}",
                                 f"{price / 100:.2f}"))  # fmt: skip
        elif open_ids:
            gated = gate.orders[open_ids[pick % len(open_ids)]]
            if op == "done":
                engine.process(log.make(OrderDone, order_id=gated.order_id, reason="cancelled"))
            else:
                remaining = abs(gated.qty)
                qty = min(lots, remaining)
                better = gated.price + (offset if gated.qty > 0 else -offset)
                buyer, seller = ("alice", "mm") if gated.qty > 0 else ("mm", "alice")
                ids = {"buy_order_id" if gated.qty > 0 else "sell_order_id": gated.order_id}
                outputs = engine.process(
                    log.fill(SPOT, f"{better / 100:.2f}", f"{qty / 10**5:.5f}", buyer=buyer,
                             seller=seller, taker_side="buy" if gated.qty > 0 else "sell",
                             taker_fee_rate="0.001", **ids)
                )  # fmt: skip
                assert outputs == [], outputs
                if qty == remaining:
                    engine.process(log.make(OrderDone, order_id=gated.order_id, reason="filled"))
        reserved: dict[str, int] = {}
        for gated in gate.orders.values():
            reserved[gated.asset] = reserved.get(gated.asset, 0) + gated.reserved
        for asset, balance in ledger.accounts["alice"].balances.items():
            assert balance.locked == reserved.get(asset, 0), asset
            assert balance.free >= 0
        assert ledger.asset_totals() == totals
