"""Ledger behaviour: accounts, funds, modes, isolated margin, rejections, bad debt."""

from __future__ import annotations

import pytest

from fengkong.engine import Engine, RejectError
from fengkong.model.events import (
    AccountOpened,
    AssetListed,
    BadDebt,
    Deposit,
    FundingPayment,
    InstrumentListed,
    InstrumentParamsChanged,
    MarginTransfer,
    Rejected,
    RejectReason,
    SetMarginMode,
    SetPositionMode,
    Settlement,
    Transfer,
    Withdrawal,
)
from tests.factories import EXPIRY, LISTINGS, balance, exchange, position, run


def rejection(engine: Engine, event) -> Rejected:
    before = engine.state_hash()
    outputs = engine.process(event)
    assert len(outputs) == 1 and isinstance(outputs[0], Rejected), outputs
    assert engine.state_hash() == before, "a rejected event must change nothing"
    return outputs[0]


def funded(*symbols: str):
    log = exchange(
        *symbols,
        accounts={
            "alice": {"USDT": "10000", "BTC": "1"},
            "bob": {"USDT": "10000", "BTC": "1"},
        },
    )
    engine, outputs = run(log.events)
    assert outputs == []
    return engine, log


def test_deposit_withdraw_and_transfer_move_exact_units():
    engine, log = funded()
    run(
        [
            log.make(Withdrawal, account="alice", asset="USDT", amount="0.00000001"),
            log.make(Transfer, from_account="bob", to_account="alice", asset="BTC", amount="0.5"),
        ],
        engine,
    )
    assert balance(engine, "alice", "USDT") == "9999.99999999"
    assert balance(engine, "alice", "BTC") == "1.5"
    assert balance(engine, "bob", "BTC") == "0.5"


@pytest.mark.parametrize(
    ("event_type", "fields", "reason", "field"),
    [
        (Deposit, dict(account="nobody", asset="USDT", amount="1"), "UNKNOWN_ACCOUNT", "account"),
        (Deposit, dict(account="alice", asset="DOGE", amount="1"), "UNKNOWN_ASSET", "asset"),
        (Deposit, dict(account="alice", asset="USDT", amount="0"), "NON_POSITIVE_AMOUNT", "amount"),
        (
            Deposit,
            dict(account="alice", asset="USDT", amount="-5"),
            "NON_POSITIVE_AMOUNT",
            "amount",
        ),
        (Deposit, dict(account="alice", asset="USDT", amount="NaN"), "INVALID_NUMBER", "amount"),
        (Deposit, dict(account="alice", asset="USDT", amount="1e3"), "INVALID_NUMBER", "amount"),
        (
            Deposit,
            dict(account="alice", asset="USDT", amount="0.000000001"),
            "INVALID_NUMBER",
            "amount",
        ),
        (
            Withdrawal,
            dict(account="alice", asset="USDT", amount="10000.00000001"),
            "INSUFFICIENT_BALANCE",
            "amount",
        ),
        (
            Withdrawal,
            dict(account="alice", asset="ETH", amount="1"),
            "INSUFFICIENT_BALANCE",
            "amount",
        ),
        (
            Transfer,
            dict(from_account="alice", to_account="ghost", asset="USDT", amount="1"),
            "UNKNOWN_ACCOUNT",
            "to_account",
        ),
        (
            Transfer,
            dict(from_account="alice", to_account="alice", asset="USDT", amount="1"),
            "INVALID_PARAMETER",
            "to_account",
        ),
        (AccountOpened, dict(account="alice"), "ALREADY_EXISTS", "account"),
        (AccountOpened, dict(account="sys:fees"), "ALREADY_EXISTS", "account"),
        (AccountOpened, dict(account="sys:new"), "INVALID_PARAMETER", "account"),
        (AssetListed, dict(asset="USDT", scale=8), "ALREADY_EXISTS", "asset"),
        (AssetListed, dict(asset="XYZ", scale=19), "INVALID_PARAMETER", "scale"),
    ],
)
def test_invalid_fund_events_are_rejected_with_their_reason_and_field(
    event_type, fields, reason, field
):
    engine, log = funded()
    refused = rejection(engine, log.make(event_type, **fields))
    assert refused.reason is RejectReason[reason]
    assert refused.field == field
    assert refused.event_type == event_type.__name__


@pytest.mark.parametrize(
    ("overrides", "reason", "field"),
    [
        (dict(price="50000.2"), "PRICE_OFF_TICK", "price"),
        (dict(qty="0.003"), "QTY_OFF_LOT", "qty"),
        (dict(qty="0.0015"), "INVALID_NUMBER", "qty"),
        (dict(price="50000.123"), "INVALID_NUMBER", "price"),
        (dict(qty="0"), "NON_POSITIVE_AMOUNT", "qty"),
        (dict(price="-1"), "NON_POSITIVE_AMOUNT", "price"),
        (dict(price="inf"), "INVALID_NUMBER", "price"),
        (dict(buyer="ghost"), "UNKNOWN_ACCOUNT", "buyer"),
        (dict(seller="ghost"), "UNKNOWN_ACCOUNT", "seller"),
        (dict(seller="alice"), "SELF_TRADE", "seller"),
        (dict(symbol="ETHUSDT"), "UNKNOWN_INSTRUMENT", "symbol"),
        (
            dict(maker_fee_rate="-0.001", taker_fee_rate="0.0005"),
            "INVALID_PARAMETER",
            "maker_fee_rate",
        ),
        (dict(taker_fee_rate="0.2"), "INVALID_PARAMETER", "taker_fee_rate"),
        (dict(buyer_position_side="long"), "POSITION_SIDE_MISMATCH", "buyer_position_side"),
        (dict(qty="1", price="20000"), "INSUFFICIENT_BALANCE", "buyer"),
    ],
)
def test_invalid_fills_are_rejected_without_any_change(overrides, reason, field):
    engine, log = funded("BTCUSDT-PERP")
    # a tick of 0.5 and a lot of 0.002 within the listing's scales (0.1 and 0.001)
    change = log.make(
        InstrumentParamsChanged,
        symbol="BTCUSDT-PERP",
        tick_size="0.5",
        lot_size="0.002",
        min_qty="0.002",
    )
    # a loss-making close that the buyer cannot pay (last case) needs an open position first
    run([change, log.fill("BTCUSDT-PERP", "50000", "1", buyer="bob", seller="alice")], engine)
    args = dict(symbol="BTCUSDT-PERP", price="50000", qty="0.002", buyer="alice", seller="bob")
    if reason == "INSUFFICIENT_BALANCE":
        args.update(buyer="alice", seller="bob", price="70000", qty="1")
        overrides = {}
    args.update(overrides)
    symbol = args.pop("symbol")
    refused = rejection(engine, log.fill(symbol, args.pop("price"), args.pop("qty"), **args))
    assert refused.reason is RejectReason[reason]
    assert refused.field == field


def test_fill_on_halted_instrument_is_refused_until_trading_resumes():
    engine, log = funded("BTCUSDT-PERP")
    run([log.make(InstrumentParamsChanged, symbol="BTCUSDT-PERP", status="halted")], engine)
    refused = rejection(
        engine, log.fill("BTCUSDT-PERP", "50000", "0.001", buyer="alice", seller="bob")
    )
    assert refused.reason is RejectReason.INSTRUMENT_NOT_TRADING
    run([log.make(InstrumentParamsChanged, symbol="BTCUSDT-PERP", status="trading")], engine)
    assert (
        engine.process(log.fill("BTCUSDT-PERP", "50000", "0.001", buyer="alice", seller="bob"))
        == []
    )


def test_params_change_must_fit_the_listing_scales():
    engine, log = funded("BTCUSDT-PERP")
    refused = rejection(
        engine, log.make(InstrumentParamsChanged, symbol="BTCUSDT-PERP", tick_size="0.01")
    )
    assert (refused.reason, refused.field) == (RejectReason.INVALID_NUMBER, "tick_size")
    refused = rejection(
        engine, log.make(InstrumentParamsChanged, symbol="BTCUSDT-PERP", min_qty="2000")
    )
    assert (refused.reason, refused.field) == (RejectReason.INVALID_PARAMETER, "min_qty")
    run([log.make(InstrumentParamsChanged, symbol="BTCUSDT-PERP", tick_size="0.5")], engine)
    assert engine.component("ledger").instruments["BTCUSDT-PERP"].tick_size == 5


@pytest.mark.parametrize(
    ("symbol", "overrides", "reason", "field"),
    [
        ("BTCUSDT-PERP", dict(settle="BTC"), "INVALID_PARAMETER", "settle"),
        ("BTCUSD-PERP", dict(settle="USD"), "INVALID_PARAMETER", "settle"),
        ("BTCUSDT-PERP", dict(base="DOGE"), "UNKNOWN_ASSET", "base"),
        ("ETHUSDT-260327", dict(expiry=None), "INVALID_PARAMETER", "expiry"),
        ("BTCUSDT-PERP", dict(expiry=EXPIRY), "INVALID_PARAMETER", "expiry"),
        ("BTC-27MAR26-70000-C", dict(strike=None), "INVALID_PARAMETER", "option_kind"),
        ("BTC-27MAR26-70000-C", dict(strike="70000.00005"), "INVALID_NUMBER", "strike"),
        ("BTCUSDT-PERP", dict(tick_size="0"), "NON_POSITIVE_AMOUNT", "tick_size"),
        ("BTCUSDT-PERP", dict(lot_size="0.002", min_qty="0.003"), "INVALID_PARAMETER", "min_qty"),
        ("BTCUSDT", dict(lot_size="0.000000001"), "INVALID_PARAMETER", "lot_size"),
        ("BTCUSDT-PERP", dict(status="settled"), "INVALID_PARAMETER", "status"),
    ],
)
def test_invalid_listings_are_rejected(symbol, overrides, reason, field):
    engine, log = funded()
    fields = {**LISTINGS[symbol], **overrides}
    refused = rejection(engine, log.make(InstrumentListed, symbol=symbol, **fields))
    assert refused.reason is RejectReason[reason]
    assert refused.field == field


def test_hedge_mode_keeps_long_and_short_legs_apart():
    log = exchange("BTCUSDT-PERP", accounts={"mm": {"USDT": "100000"}})
    log.account("h", mode="hedge")
    log.deposit("h", "USDT", "10000")
    log.fill("BTCUSDT-PERP", "60000", "1", buyer="h", seller="mm", buyer_position_side="long")
    log.fill("BTCUSDT-PERP", "62000", "0.5", buyer="mm", seller="h", seller_position_side="short")
    log.fill("BTCUSDT-PERP", "61000", "0.4", buyer="mm", seller="h", seller_position_side="long")
    engine, outputs = run(log.events)
    assert outputs == []
    assert position(engine, "h", "BTCUSDT-PERP", "long").qty == 600
    assert position(engine, "h", "BTCUSDT-PERP", "short").qty == -500
    assert position(engine, "h", "BTCUSDT-PERP", "long").realized_pnl == 400 * 10**8
    # closing more than the long leg holds would flip it: refused in hedge mode
    refused = rejection(
        engine,
        log.fill(
            "BTCUSDT-PERP", "61000", "0.7", buyer="mm", seller="h", seller_position_side="long"
        ),
    )
    assert refused.reason is RejectReason.CLOSE_EXCEEDS_POSITION
    # a buy on the short leg that is flat on the long side cannot open a short
    refused = rejection(
        engine,
        log.fill(
            "BTCUSDT-PERP", "61000", "0.6", buyer="h", seller="mm", buyer_position_side="short"
        ),
    )
    assert refused.reason is RejectReason.CLOSE_EXCEEDS_POSITION


def test_position_and_margin_modes_cannot_change_with_an_open_position():
    engine, log = funded("BTCUSDT-PERP")
    run([log.fill("BTCUSDT-PERP", "50000", "0.01", buyer="alice", seller="bob")], engine)
    refused = rejection(engine, log.make(SetPositionMode, account="alice", mode="hedge"))
    assert refused.reason is RejectReason.POSITION_OPEN
    refused = rejection(
        engine, log.make(SetMarginMode, account="alice", symbol="BTCUSDT-PERP", mode="isolated")
    )
    assert refused.reason is RejectReason.POSITION_OPEN
    run([log.fill("BTCUSDT-PERP", "50000", "0.01", buyer="bob", seller="alice")], engine)
    assert engine.process(log.make(SetPositionMode, account="alice", mode="hedge")) == []


def test_isolated_position_pnl_stays_in_its_margin_and_returns_when_flat():
    engine, log = funded("BTCUSDT-PERP")
    events = [
        log.isolated("alice", "BTCUSDT-PERP"),
        log.make(MarginTransfer, account="alice", symbol="BTCUSDT-PERP", amount="1000"),
        log.fill(
            "BTCUSDT-PERP", "50000", "0.1", buyer="alice", seller="bob", taker_fee_rate="0.001"
        ),
        log.fill("BTCUSDT-PERP", "49000", "0.05", buyer="bob", seller="alice"),
    ]
    run(events, engine)
    held = position(engine, "alice", "BTCUSDT-PERP")
    assert held.isolated_margin == 950 * 10**8  # 1000 − 0.05 × 1000
    assert balance(engine, "alice", "USDT") == "8995"  # 10,000 − 1,000 − fee 5
    # margin cannot be taken back from an open position before the margin model exists
    refused = rejection(
        engine, log.make(MarginTransfer, account="alice", symbol="BTCUSDT-PERP", amount="-10")
    )
    assert refused.reason is RejectReason.MARGIN_CHECK_UNAVAILABLE
    # a loss beyond the isolated margin cannot be paid: refused
    refused = rejection(
        engine, log.fill("BTCUSDT-PERP", "20000", "0.05", buyer="bob", seller="alice")
    )
    assert refused.reason is RejectReason.INSUFFICIENT_ISOLATED_MARGIN
    run([log.fill("BTCUSDT-PERP", "51000", "0.05", buyer="bob", seller="alice")], engine)
    assert position(engine, "alice", "BTCUSDT-PERP") is None
    assert balance(engine, "alice", "USDT") == "9995"  # 8,995 + 950 + the last 50 of PnL


def test_margin_transfer_rules():
    engine, log = funded("BTCUSDT-PERP", "BTCUSDT")
    refused = rejection(
        engine, log.make(MarginTransfer, account="alice", symbol="BTCUSDT-PERP", amount="1")
    )
    assert refused.reason is RejectReason.NOT_APPLICABLE  # cross, not isolated
    refused = rejection(
        engine, log.make(MarginTransfer, account="alice", symbol="BTCUSDT", amount="1")
    )
    assert refused.reason is RejectReason.NOT_APPLICABLE  # spot has no margin
    run([log.isolated("alice", "BTCUSDT-PERP")], engine)
    refused = rejection(
        engine, log.make(MarginTransfer, account="alice", symbol="BTCUSDT-PERP", amount="20000")
    )
    assert refused.reason is RejectReason.INSUFFICIENT_BALANCE
    refused = rejection(
        engine,
        log.make(
            MarginTransfer, account="alice", symbol="BTCUSDT-PERP", amount="1", position_side="long"
        ),
    )
    assert refused.reason is RejectReason.POSITION_SIDE_MISMATCH
    run([log.make(MarginTransfer, account="alice", symbol="BTCUSDT-PERP", amount="100")], engine)
    refused = rejection(
        engine, log.make(MarginTransfer, account="alice", symbol="BTCUSDT-PERP", amount="-100.5")
    )
    assert refused.reason is RejectReason.INSUFFICIENT_ISOLATED_MARGIN
    run([log.make(MarginTransfer, account="alice", symbol="BTCUSDT-PERP", amount="-100")], engine)
    assert balance(engine, "alice", "USDT") == "10000"
    assert position(engine, "alice", "BTCUSDT-PERP") is None


def test_funding_beyond_the_account_is_bad_debt_drawn_from_insurance_then_socialized():
    log = exchange("BTCUSDT-PERP", accounts={"poor": {"USDT": "10"}, "rich": {"USDT": "100000"}})
    log.deposit("sys:insurance", "USDT", "2")
    log.fill("BTCUSDT-PERP", "50000", "1", buyer="poor", seller="rich")
    log.make(FundingPayment, symbol="BTCUSDT-PERP", rate="0.0003", mark_price="50000")
    engine, outputs = run(log.events)
    bad = [o for o in outputs if isinstance(o, BadDebt)]
    # owed 15, held 10: insurance pays 2, 3 are socialized
    assert [(b.account, b.shortfall, b.insurance, b.socialized) for b in bad] == [
        ("poor", 5 * 10**8, 2 * 10**8, 3 * 10**8)
    ]
    assert balance(engine, "poor", "USDT") == "0"
    assert balance(engine, "sys:insurance", "USDT") == "0"
    assert balance(engine, "rich", "USDT") == "100015"


def test_settlement_refuses_perpetuals_early_and_twice():
    engine, log = funded("BTCUSDT-PERP", "ETHUSDT-260327")
    refused = rejection(engine, log.make(Settlement, symbol="BTCUSDT-PERP", price="1"))
    assert refused.reason is RejectReason.NOT_APPLICABLE
    refused = rejection(engine, log.make(Settlement, symbol="ETHUSDT-260327", price="3000"))
    assert (refused.reason, refused.field) == (RejectReason.INVALID_PARAMETER, "ts")
    run([log.make(Settlement, symbol="ETHUSDT-260327", price="3000", ts=EXPIRY)], engine)
    refused = rejection(
        engine, log.make(Settlement, symbol="ETHUSDT-260327", price="3000", ts=EXPIRY)
    )
    assert refused.reason is RejectReason.INSTRUMENT_NOT_TRADING
    refused = rejection(
        engine, log.fill("ETHUSDT-260327", "3000", "1", buyer="alice", seller="bob")
    )
    assert refused.reason is RejectReason.INSTRUMENT_NOT_TRADING


def test_lock_and_unlock_keep_total_equal_free_plus_locked():
    engine, _ = funded()
    ledger = engine.component("ledger")
    ledger.lock("alice", "USDT", 3 * 10**8)
    held = ledger.accounts["alice"].balances["USDT"]
    assert (held.free, held.locked, held.total) == (9997 * 10**8, 3 * 10**8, 10000 * 10**8)
    with pytest.raises(RejectError):
        ledger.lock("alice", "USDT", 10_000 * 10**8)
    with pytest.raises(RejectError):
        ledger.unlock("alice", "USDT", 4 * 10**8)
    ledger.unlock("alice", "USDT", 3 * 10**8)
    assert (held.free, held.locked) == (10000 * 10**8, 0)


def test_unowned_event_kinds_are_rejected_as_unhandled():
    from fengkong.model.events import Event, register_event

    @register_event
    class Unclaimed(Event, tag=True):
        note: str

    engine, log = funded()
    refused = rejection(engine, log.make(Unclaimed, note="x"))
    assert refused.reason is RejectReason.UNHANDLED_EVENT


def test_funding_order_is_the_same_after_a_restore_when_the_insurance_fund_is_a_holder():
    """Regression (found by the snapshot property): funding used to pay holders in opening
    order, which a restored ledger does not keep; with the insurance fund both receiving funding
    and covering a payer's bad debt, the order changed how much bad debt it covered."""
    log = exchange("BTCUSDT-PERP", accounts={"zz": {"USDT": "1"}})
    log.deposit("sys:insurance", "USDT", "2")
    log.fill("BTCUSDT-PERP", "60000", "1", buyer="zz", seller="sys:insurance")
    funding = log.make(FundingPayment, symbol="BTCUSDT-PERP", rate="0.0001", mark_price="60000")
    engine, _ = run(log.events[:-1])
    restored = Engine.restore(engine.snapshot())
    straight = engine.process(funding)
    again = restored.process(funding)
    assert straight == again
    assert [type(o).__name__ for o in straight] == ["BadDebt", "FundingSettled"]
    assert restored.state_hash() == engine.state_hash()
