"""Each gate check refuses with its reason; accepting reserves, done/fill release exactly."""

from __future__ import annotations

from fengkong.gate.events import (
    GateConfigured,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderRejectReason,
    SetLeverage,
)
from fengkong.model.events import Rejected, SetMarginMode
from tests.factories import gate_config, gated_engine, gated_exchange, order, run

R = OrderRejectReason
PERP, SPOT = "BTCUSDT-PERP", "BTCUSDT"
USDT = 10**8


def _setup(usdt: str = "10000"):
    log = gated_exchange(
        {PERP: "50000", SPOT: "50000"},
        {"alice": {"USDT": usdt, "BTC": "1"}, "mm": {"USDT": "10000000", "BTC": "100"}},
    )
    engine, _ = run(log.events, gated_engine())
    return log, engine, engine.component("gate"), engine.component("ledger")


def _reason(outputs):
    assert len(outputs) == 1, outputs
    return outputs[0].reason if isinstance(outputs[0], OrderRejected) else None


def test_shape_numbers_tick_lot_and_quantity_bounds() -> None:
    log, engine, _, _ = _setup()
    cases = [
        (dict(side="hold"), R.INVALID_ORDER),
        (dict(order_type="limit", price=None), R.INVALID_ORDER),
        (dict(order_type="market", time_in_force="gtc", price=None), R.INVALID_ORDER),
        (dict(order_type="stop"), R.INVALID_ORDER),
        (dict(position_side="long"), R.INVALID_ORDER),  # one-way account
        (dict(qty="abc"), R.INVALID_NUMBER),
        (dict(qty="0.0001"), R.INVALID_NUMBER),  # finer than the lot scale
        (dict(price="50000.05"), R.INVALID_NUMBER),
        (dict(price="50000.3", qty="0.001"), None),
        (dict(qty="2000"), R.QTY_ABOVE_MAX),
    ]
    for i, (fields, reason) in enumerate(cases):
        base = dict(side="buy", qty="0.001", price="50000")
        base.update(fields)
        side, qty, price = base.pop("side"), base.pop("qty"), base.pop("price")
        outputs = engine.process(order(log, f"o{i}", "alice", PERP, side, qty, price, **base))
        assert _reason(outputs) is reason, (fields, outputs)


def test_tick_and_lot_multiples_after_a_parameter_change() -> None:
    from fengkong.model.events import InstrumentParamsChanged

    log, engine, _, _ = _setup()
    changed = log.make(
        InstrumentParamsChanged, symbol=PERP, tick_size="0.5", lot_size="0.01", min_qty="0.01"
    )
    assert engine.process(changed) == []
    assert _reason(engine.process(order(log, "a", "alice", PERP, "buy", "0.01", "50000.1"))) is (
        R.PRICE_OFF_TICK
    )
    assert _reason(engine.process(order(log, "b", "alice", PERP, "buy", "0.011", "50000"))) is (
        R.QTY_OFF_LOT
    )
    engine.process(log.make(InstrumentParamsChanged, symbol=PERP, min_qty="0.02"))
    assert _reason(engine.process(order(log, "c", "alice", PERP, "buy", "0.01", "50000"))) is (
        R.QTY_BELOW_MIN
    )


def test_price_band_and_notional_bounds() -> None:
    log, engine, _, _ = _setup()
    gate_config(log, PERP, price_band="0.02", max_notional="1000")
    engine.process(log.events[-1])
    assert _reason(engine.process(order(log, "a", "alice", PERP, "buy", "0.001", "51001"))) is (
        R.PRICE_OUTSIDE_BAND
    )
    assert _reason(engine.process(order(log, "b", "alice", PERP, "buy", "0.001", "51000"))) is None
    assert _reason(engine.process(order(log, "c", "alice", PERP, "buy", "0.03", "50000"))) is (
        R.NOTIONAL_ABOVE_MAX
    )
    # spot min notional 5 USDT (listing): 0.00001 BTC at 50,000 = 0.5 USDT
    assert _reason(engine.process(order(log, "d", "alice", SPOT, "buy", "0.00001", "50000"))) is (
        R.NOTIONAL_BELOW_MIN
    )


def test_open_order_count_and_rate_limit() -> None:
    log, engine, _, _ = _setup()
    engine.process(log.make(GateConfigured, max_open_orders=2, rate_capacity=3, rate_per_second=1))
    ts = log.ts
    for i in range(2):
        engine.process(order(log, f"o{i}", "alice", PERP, "buy", "0.001", "50000", ts=ts))
    outputs = engine.process(order(log, "o2", "alice", PERP, "buy", "0.001", "50000", ts=ts))
    assert _reason(outputs) is R.TOO_MANY_OPEN_ORDERS
    engine.process(log.make(OrderDone, order_id="o0", reason="cancelled", ts=ts))
    assert _reason(engine.process(order(log, "o3", "alice", PERP, "buy", "0.001", "50000", ts=ts)))\
        is None  # fmt: skip
    engine.process(log.make(OrderDone, order_id="o1", reason="cancelled", ts=ts))
    # 3 tokens, 3 accepted at the same event time: the 4th waits for the refill (1/s)
    outputs = engine.process(order(log, "o4", "alice", PERP, "buy", "0.001", "50000", ts=ts))
    assert _reason(outputs) is R.RATE_LIMITED
    outputs = engine.process(order(log, "o5", "alice", PERP, "buy", "0.001", "50000", ts=ts + 999))
    assert _reason(outputs) is R.RATE_LIMITED
    outputs = engine.process(order(log, "o6", "alice", PERP, "buy", "0.001", "50000", ts=ts + 1000))
    assert _reason(outputs) is None


def test_position_limit_and_open_interest_cap() -> None:
    log, engine, gate, _ = _setup("1000000")
    gate_config(log, PERP, position_limit="0.05", open_interest_cap="0.04")
    engine.process(log.events[-1])
    engine.process(log.fill(PERP, "50000", "0.03", buyer="alice", seller="mm"))
    assert gate.open_interest(PERP) == 30
    assert _reason(engine.process(order(log, "a", "alice", PERP, "buy", "0.03", "50000"))) is (
        R.POSITION_LIMIT
    )
    engine.process(log.fill(PERP, "50000", "0.04", buyer="mm", seller="alice"))  # both flip
    assert gate.open_interest(PERP) == 10  # mm long 0.01, alice short 0.01
    # alice short 0.01 -> 0.05 could open 0.04 more: 0.01 + 0.04 > 0.04 cap
    assert _reason(engine.process(order(log, "b", "alice", PERP, "sell", "0.04", "50000"))) is (
        R.OPEN_INTEREST_CAP
    )
    assert _reason(engine.process(order(log, "c", "alice", PERP, "sell", "0.03", "50000"))) is None


def test_leverage_must_fit_the_bracket_of_the_resulting_notional() -> None:
    """2021 BTCUSDT table: 125x up to 50,000 notional, 100x to 250,000, 50x to 1,000,000."""
    log, engine, gate, _ = _setup("1000000")
    engine.process(log.make(SetLeverage, account="alice", symbol=PERP, leverage=100))
    assert gate.leverage[PERP]["alice"] == 100
    assert _reason(engine.process(order(log, "a", "alice", PERP, "buy", "5", "50000"))) is None
    outputs = engine.process(order(log, "b", "alice", PERP, "buy", "0.1", "50000"))
    assert _reason(outputs) is R.LEVERAGE_EXCEEDS_TIER  # 5.1 BTC = 255,000 notional: 50x max
    assert _reason(engine.process(order(log, "c", "alice", PERP, "buy", "10000", "50000"))) is (
        R.QTY_ABOVE_MAX
    )
    refused = engine.process(log.make(SetLeverage, account="alice", symbol=PERP, leverage=126))
    assert isinstance(refused[0], Rejected) and refused[0].field == "leverage"


def test_cross_margin_uses_wallet_plus_upnl_minus_used() -> None:
    """Binance: available = wallet + UPNL − position IM − open orders' margin."""
    log, engine, gate, _ledger = _setup("1000")
    engine.process(log.fill(PERP, "50000", "0.1", buyer="alice", seller="mm"))
    # IM of the position at 20x: 5,000/20 = 250; UPNL 0 at mark 50,000
    assert gate.available_margin("alice", "USDT", log.ts) == 750 * USDT
    accepted = engine.process(order(log, "a", "alice", PERP, "buy", "0.3", "50000"))
    assert accepted[0].reserved == 750 * USDT
    assert gate.available_margin("alice", "USDT", log.ts) == 0
    outputs = engine.process(order(log, "b", "alice", PERP, "buy", "0.001", "50000"))
    assert _reason(outputs) is R.INSUFFICIENT_MARGIN
    assert "available 0" in outputs[0].message


def test_isolated_orders_are_limited_by_the_position_margin() -> None:
    from fengkong.model.events import MarginTransfer

    log, engine, _gate, _ = _setup("1000")
    engine.process(log.make(SetMarginMode, account="alice", symbol=PERP, mode="isolated"))
    assert _reason(engine.process(order(log, "a", "alice", PERP, "buy", "0.01", "50000"))) is (
        R.INSUFFICIENT_MARGIN
    )
    engine.process(log.make(MarginTransfer, account="alice", symbol=PERP, amount="100"))
    assert _reason(engine.process(order(log, "b", "alice", PERP, "buy", "0.04", "50000"))) is None
    assert _reason(engine.process(order(log, "c", "alice", PERP, "buy", "0.001", "50000"))) is (
        R.INSUFFICIENT_MARGIN
    )


def test_spot_orders_lock_the_ledger_and_done_unlocks_exactly() -> None:
    log, engine, gate, ledger = _setup()
    buy = engine.process(order(log, "b", "alice", SPOT, "buy", "0.1", "50000"))[0]
    assert isinstance(buy, OrderAccepted) and buy.reserved == 5005 * USDT  # + 0.1 % fee reserve
    sell = engine.process(order(log, "s", "alice", SPOT, "sell", "0.5", "50000"))[0]
    assert sell.asset == "BTC" and sell.reserved == 50_000_000
    usdt, btc = ledger.accounts["alice"].balances["USDT"], ledger.accounts["alice"].balances["BTC"]
    assert (usdt.free, usdt.locked, btc.free, btc.locked) == (
        4995 * USDT, 5005 * USDT, 50_000_000, 50_000_000,
    )  # fmt: skip
    assert _reason(engine.process(order(log, "x", "alice", SPOT, "sell", "0.6", "50000"))) is (
        R.INSUFFICIENT_BALANCE
    )
    engine.process(log.make(OrderDone, order_id="b", reason="cancelled"))
    engine.process(log.make(OrderDone, order_id="s", reason="expired"))
    assert (usdt.free, usdt.locked, btc.free, btc.locked) == (10_000 * USDT, 0, 10**8, 0)
    assert gate.orders == {}
    refused = engine.process(log.make(OrderDone, order_id="s", reason="filled"))
    assert isinstance(refused[0], Rejected)


def test_spot_fills_spend_the_lock_and_release_the_rest_exactly() -> None:
    log, engine, gate, ledger = _setup()
    engine.process(order(log, "b", "alice", SPOT, "buy", "0.1", "50000"))
    usdt = ledger.accounts["alice"].balances["USDT"]
    engine.process(log.fill(SPOT, "49000", "0.04", buyer="alice", seller="mm", buy_order_id="b",
                            taker_fee_rate="0.001"))  # fmt: skip
    # released 5,005 × 0.04/0.1 = 2,002; paid 1,960 + fee 1.96
    assert gate.orders["b"].reserved == 3003 * USDT and gate.orders["b"].qty == 6000
    assert usdt.locked == 3003 * USDT
    assert usdt.free == 4995 * USDT + 2002 * USDT - 1960 * USDT - 196 * 10**6
    engine.process(log.fill(SPOT, "50000", "0.06", buyer="alice", seller="mm", buy_order_id="b"))
    assert gate.orders["b"].reserved == 0 and usdt.locked == 0
    engine.process(log.make(OrderDone, order_id="b", reason="filled"))
    assert "b" not in gate.orders


def test_a_refused_fill_naming_an_order_puts_the_lock_back() -> None:
    log, engine, _gate, ledger = _setup()
    engine.process(order(log, "s", "alice", SPOT, "sell", "0.5", "50000"))
    before = engine.state_hash()
    outputs = engine.process(
        log.fill(SPOT, "50000", "0.5", buyer="ghost", seller="alice", sell_order_id="s")
    )
    assert isinstance(outputs[0], Rejected) and outputs[0].field == "buyer"
    assert engine.state_hash() == before
    assert ledger.accounts["alice"].balances["BTC"].locked == 50_000_000


def test_derivative_fill_converts_order_margin_into_position_margin() -> None:
    log, engine, gate, _ = _setup("1000")
    engine.process(order(log, "a", "alice", PERP, "buy", "0.1", "50000"))
    assert gate.available_margin("alice", "USDT", log.ts) == 750 * USDT
    engine.process(log.fill(PERP, "50000", "0.04", buyer="alice", seller="mm", buy_order_id="a"))
    assert gate.orders["a"].reserved == 150 * USDT
    # position IM 2,000/20 = 100 + remaining order 150
    assert gate.available_margin("alice", "USDT", log.ts) == 750 * USDT


def test_a_filled_order_done_after_another_of_its_side_closes_cleanly() -> None:
    """A fully filled order stays open, with no quantity, until its OrderDone; completing
    another order of the same account, instrument and side first must not take its book
    entry (it used to: the second OrderDone raised KeyError out of the engine)."""
    log, engine, gate, _ = _setup()
    engine.process(order(log, "a", "alice", PERP, "buy", "0.01", "50000"))
    engine.process(order(log, "b", "alice", PERP, "sell", "0.01", "50000"))
    engine.process(log.fill(PERP, "50000", "0.01", buyer="alice", seller="mm", buy_order_id="a"))
    assert engine.process(log.make(OrderDone, order_id="b", reason="cancelled")) == []
    assert engine.process(log.make(OrderDone, order_id="a", reason="filled")) == []
    assert gate.orders == {} and gate._books == {}


def test_replace_re_checks_with_the_old_reservation_released() -> None:
    log, engine, gate, _ = _setup("1000")
    engine.process(order(log, "a", "alice", PERP, "buy", "0.2", "50000"))
    assert gate.available_margin("alice", "USDT", log.ts) == 500 * USDT
    outputs = engine.process(order(log, "a", "alice", PERP, "buy", "0.4", "50000",
                                   action="replace"))  # fmt: skip
    assert outputs[0].reserved == 1000 * USDT
    assert gate.available_margin("alice", "USDT", log.ts) == 0
    assert _reason(engine.process(order(log, "a", "alice", PERP, "buy", "0.5", "50000",
                                        action="replace"))) is R.INSUFFICIENT_MARGIN  # fmt: skip
    assert _reason(engine.process(order(log, "zz", "alice", PERP, "buy", "0.1", "50000",
                                        action="replace"))) is R.UNKNOWN_ORDER  # fmt: skip
    assert _reason(engine.process(order(log, "a", "alice", PERP, "buy", "0.1", "50000"))) is (
        R.DUPLICATE_ORDER_ID
    )


def test_snapshot_restore_keeps_orders_reservations_and_hash() -> None:
    from fengkong.engine import Engine

    log, engine, gate, _ = _setup()
    engine.process(order(log, "a", "alice", PERP, "buy", "0.1", "50000"))
    engine.process(order(log, "s", "alice", SPOT, "sell", "0.5", "50000"))
    engine.process(log.fill(PERP, "50000", "0.04", buyer="alice", seller="mm", buy_order_id="a"))
    restored = Engine.restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    again = restored.component("gate")
    assert again.open_interest(PERP) == gate.open_interest(PERP) == 40
    assert again.available_margin("alice", "USDT", log.ts) == gate.available_margin(
        "alice", "USDT", log.ts
    )
    event = order(log, "b", "alice", PERP, "buy", "0.1", "50000")
    assert restored.process(event) == engine.process(event)


def test_hedge_mode_orders_name_their_leg_and_reduce_only_closes_that_leg() -> None:
    log = gated_exchange({PERP: "50000"}, {"mm": {"USDT": "10000000"}})
    log.account("hedger", mode="hedge")
    log.deposit("hedger", "USDT", "10000")
    log.fill(PERP, "50000", "0.1", buyer="hedger", seller="mm", buyer_position_side="long")
    engine, _ = run(log.events, gated_engine())
    assert _reason(engine.process(order(log, "a", "hedger", PERP, "buy", "0.01", "50000"))) is (
        R.INVALID_ORDER  # a hedge account must name the leg
    )
    # selling on the LONG leg reduces it; on the SHORT leg it opens a short
    closing = order(log, "b", "hedger", PERP, "sell", "0.1", "50000", position_side="long",
                    reduce_only=True)  # fmt: skip
    assert _reason(engine.process(closing)) is None
    opening = order(log, "c", "hedger", PERP, "sell", "0.1", "50000", position_side="short",
                    reduce_only=True)  # fmt: skip
    assert _reason(engine.process(opening)) is R.REDUCE_ONLY_INCREASES
    accepted = engine.process(order(log, "d", "hedger", PERP, "sell", "0.1", "50000",
                                    position_side="short"))  # fmt: skip
    assert accepted[0].reserved == 250 * USDT


def test_inverse_perpetual_margin_is_in_coin() -> None:
    """BTCUSD-PERP, 100 USD contracts: 100 contracts at 50,000 are 0.2 BTC of notional; at
    the default 20x the order margin is 0.01 BTC."""
    log = gated_exchange({"BTCUSD-PERP": "50000"}, {"alice": {"BTC": "1"}})
    engine, _ = run(log.events, gated_engine())
    accepted = engine.process(order(log, "a", "alice", "BTCUSD-PERP", "buy", "100", "50000"))
    assert (accepted[0].asset, accepted[0].reserved) == ("BTC", 1_000_000)
    gate = engine.component("gate")
    assert gate.available_margin("alice", "BTC", log.ts) == 10**8 - 1_000_000
    # a buy above the mark adds its open loss: 100 × 100 × (1/50,000 − 1/51,000) BTC
    accepted = engine.process(order(log, "b", "alice", "BTCUSD-PERP", "buy", "100", "51000"))
    notional = -(-(100 * 100 * 10**8) // 51_000)
    loss = -(-(100 * 100 * 10**8) // 50_000) - (100 * 100 * 10**8) // 51_000
    assert accepted[0].reserved == -(-notional // 20) + loss


def test_folded_linear_notional_equals_contract_math_charge() -> None:
    """The gate's pre-resolved linear notional is ``ContractMath.charge(q, p, 1.0)`` exactly."""
    import random

    from fengkong.gate.events import GateInstrumentConfigured, TierRow
    from fengkong.gate.rules import resolve_rules

    *_, ledger = _setup()
    rng = random.Random(5)
    for symbol in (PERP, SPOT):
        instrument = ledger.instruments[symbol]
        math = ledger.contract_math(symbol)
        tiers = [] if symbol == SPOT else [TierRow(floor="0", cap="1000000", max_leverage="20",
                                                    mmr="0.01")]  # fmt: skip
        config = GateInstrumentConfigured(seq=0, id="x", ts=0, symbol=symbol, tiers=tiers)
        rules = resolve_rules(config, instrument, math, 8, 8)
        for _ in range(500):
            qty, price = rng.randint(1, 10**9), rng.randint(1, 10**9)
            folded = -((-qty * price * rules.notional_num) // rules.notional_den)
            assert folded == math.charge(qty, price, 10**8)


def test_done_after_a_forced_charge_took_locked_funds_releases_what_is_left() -> None:
    """Funding beyond the free wallet is taken from locked funds (the ledger's forced charge);
    the spot order's later release is capped by what is still locked."""
    from fengkong.model.events import FundingPayment

    log, engine, gate, ledger = _setup("100")
    engine.process(log.fill(PERP, "50000", "0.001", buyer="alice", seller="mm"))
    engine.process(order(log, "b", "alice", SPOT, "buy", "0.0019", "50000"))  # locks 95.095
    usdt = ledger.accounts["alice"].balances["USDT"]
    assert usdt.locked == 95_095_000_00
    # a 10 % funding rate on 50 USDT of notional charges 5 USDT: free 4.905, then 0.095 locked
    engine.process(log.make(FundingPayment, symbol=PERP, rate="0.1", mark_price="50000"))
    assert usdt.free == 0 and usdt.locked == 95_000_000_00
    assert engine.process(log.make(OrderDone, order_id="b", reason="cancelled")) == []
    assert (usdt.free, usdt.locked) == (95 * USDT, 0) and gate.orders == {}
