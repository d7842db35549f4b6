"""Fail closed: every missing or unusable input is refused with its own reason, changing nothing."""

from __future__ import annotations

import pytest

from fengkong.gate.events import (
    OrderAccepted,
    OrderRejected,
    OrderRejectReason,
    SetTradingState,
)
from fengkong.market.events import SourcePrice
from fengkong.model.events import InstrumentParamsChanged, Rejected
from tests.factories import (
    STALE_AFTER_MS,
    gate_config,
    gated_engine,
    gated_exchange,
    order,
    run,
)

R = OrderRejectReason
PERP = "BTCUSDT-PERP"


def _setup(**extra):
    log = gated_exchange(
        {PERP: "50000"},
        {"alice": {"USDT": "10000"}, "mm": {"USDT": "1000000"}, **extra},
    )
    engine, _ = run(log.events, gated_engine())
    return log, engine


def _decide(log, engine, event):
    before = engine.state_hash()
    outputs = engine.process(event)
    return outputs, before


def _rejected(outputs) -> OrderRejected:
    assert len(outputs) == 1 and isinstance(outputs[0], OrderRejected), outputs
    return outputs[0]


def test_missing_account_is_rejected_unknown_account_not_accepted() -> None:
    """NautilusTrader #4011 accepts orders for accounts it cannot find; the gate refuses them."""
    log, engine = _setup()
    outputs, before = _decide(log, engine, order(log, "o1", "ghost", PERP, "buy", "0.01", "50000"))
    rejection = _rejected(outputs)
    assert (rejection.reason, rejection.field, rejection.value) == (
        R.UNKNOWN_ACCOUNT, "account", "ghost",
    )  # fmt: skip
    assert engine.state_hash() == before


def test_unknown_instrument_is_rejected() -> None:
    log, engine = _setup()
    outputs, before = _decide(log, engine, order(log, "o1", "alice", "DOGEUSDT", "buy", "1", "1"))
    assert _rejected(outputs).reason is R.UNKNOWN_INSTRUMENT
    assert engine.state_hash() == before


def test_listed_but_unconfigured_instrument_is_rejected() -> None:
    log = gated_exchange({PERP: "50000"}, {"alice": {"USDT": "10000"}})
    log.listing("ETHUSDT-260327")
    engine, _ = run(log.events, gated_engine())
    outputs, before = _decide(
        log, engine, order(log, "o1", "alice", "ETHUSDT-260327", "buy", "1", "3000")
    )
    assert _rejected(outputs).reason is R.INSTRUMENT_NOT_CONFIGURED
    assert engine.state_hash() == before


def test_missing_mark_is_rejected() -> None:
    log = gated_exchange({PERP: "50000"}, {"alice": {"USDT": "10000"}})
    log.listing("ETHUSDT-260327")
    gate_config(log, "ETHUSDT-260327")
    engine, _ = run(log.events, gated_engine())
    outputs, before = _decide(
        log, engine, order(log, "o1", "alice", "ETHUSDT-260327", "buy", "1", "3000")
    )
    assert _rejected(outputs).reason is R.MARK_MISSING
    assert engine.state_hash() == before


def test_stale_mark_is_rejected() -> None:
    """A source update after the others aged out drops the index below quorum: the market
    flags the mark stale, and the gate refuses with MARK_STALE."""
    log, engine = _setup()
    late = log.ts + STALE_AFTER_MS + 5_000
    outputs = engine.process(
        log.make(SourcePrice, source="src0", symbol=f"{PERP}-IX", price="50000", time=late,
                 ts=late)
    )  # fmt: skip
    assert any(getattr(o, "stale", False) for o in outputs)
    outputs, before = _decide(log, engine, order(log, "o1", "alice", PERP, "buy", "0.01", "50000"))
    assert _rejected(outputs).reason is R.MARK_STALE
    assert engine.state_hash() == before


def test_stale_index_is_rejected_even_before_any_market_event_notices() -> None:
    """No event re-evaluated the index, but at the request's time its sources are too old."""
    log, engine = _setup()
    late = log.ts + STALE_AFTER_MS + 5_000
    outputs, before = _decide(
        log, engine, order(log, "o1", "alice", PERP, "buy", "0.01", "50000", ts=late)
    )
    assert _rejected(outputs).reason is R.INDEX_STALE
    assert engine.state_hash() == before


def test_halted_instrument_is_rejected() -> None:
    log, engine = _setup()
    engine.process(log.make(SetTradingState, scope="instrument", target=PERP, state="halted"))
    outputs, before = _decide(log, engine, order(log, "o1", "alice", PERP, "buy", "0.01", "50000"))
    assert _rejected(outputs).reason is R.INSTRUMENT_HALTED
    assert engine.state_hash() == before


def test_instrument_halted_by_its_listing_status_is_rejected() -> None:
    log, engine = _setup()
    engine.process(log.make(InstrumentParamsChanged, symbol=PERP, status="halted"))
    outputs, _ = _decide(log, engine, order(log, "o1", "alice", PERP, "buy", "0.01", "50000"))
    assert _rejected(outputs).reason is R.INSTRUMENT_HALTED


def test_reduce_only_that_would_increase_exposure_is_rejected() -> None:
    """A reduce-only buy on a flat account, and a reduce-only sell larger than the long."""
    log, engine = _setup()
    engine.process(log.fill(PERP, "50000", "0.01", buyer="alice", seller="mm"))
    outputs, before = _decide(
        log, engine, order(log, "o1", "alice", PERP, "buy", "0.01", "50000", reduce_only=True)
    )
    assert _rejected(outputs).reason is R.REDUCE_ONLY_INCREASES
    outputs, _ = _decide(
        log, engine, order(log, "o2", "alice", PERP, "sell", "0.02", "50000", reduce_only=True)
    )
    assert _rejected(outputs).reason is R.REDUCE_ONLY_INCREASES
    assert engine.state_hash() == before
    outputs, _ = _decide(
        log, engine, order(log, "o3", "alice", PERP, "sell", "0.01", "50000", reduce_only=True)
    )
    assert isinstance(outputs[0], OrderAccepted) and outputs[0].reserved == 0


@pytest.mark.parametrize(
    ("scope", "target", "state", "reason", "field"),
    [
        ("platform", "", "halted", R.PLATFORM_HALTED, "platform"),
        ("account", "alice", "halted", R.ACCOUNT_HALTED, "account"),
        ("platform", "", "cancel_only", R.CANCEL_ONLY, "platform"),
        ("account", "alice", "cancel_only", R.CANCEL_ONLY, "account"),
        ("instrument", PERP, "reduce_only", R.REDUCE_ONLY_STATE, "instrument"),
    ],
)
def test_trading_states_refuse_new_orders(scope, target, state, reason, field) -> None:
    log, engine = _setup()
    engine.process(log.make(SetTradingState, scope=scope, target=target, state=state))
    outputs, before = _decide(log, engine, order(log, "o1", "alice", PERP, "buy", "0.01", "50000"))
    rejection = _rejected(outputs)
    assert (rejection.reason, rejection.field) == (reason, field)
    assert engine.state_hash() == before


def test_cancel_only_still_accepts_cancels_and_halted_does_not() -> None:
    log, engine = _setup()
    assert isinstance(
        engine.process(order(log, "o1", "alice", PERP, "buy", "0.01", "50000"))[0], OrderAccepted
    )
    engine.process(log.make(SetTradingState, scope="platform", state="cancel_only"))
    cancel = engine.process(order(log, "o1", "alice", PERP, "buy", "0", action="cancel"))
    assert isinstance(cancel[0], OrderAccepted)
    engine.process(log.make(SetTradingState, scope="platform", state="halted"))
    cancel = engine.process(order(log, "o1", "alice", PERP, "buy", "0", action="cancel"))
    assert _rejected(cancel).reason is R.PLATFORM_HALTED


def test_expired_instrument_is_rejected() -> None:
    from tests.factories import EXPIRY

    log = gated_exchange({"ETHUSDT-260327": "3000"}, {"alice": {"USDT": "10000"}})
    engine, _ = run(log.events, gated_engine())
    outputs = engine.process(
        order(log, "o1", "alice", "ETHUSDT-260327", "buy", "1", "3000", ts=EXPIRY)
    )
    assert _rejected(outputs).reason is R.INSTRUMENT_EXPIRED


def test_gate_configuration_of_an_unlisted_symbol_is_refused() -> None:
    log, engine = _setup()
    from fengkong.gate.events import GateInstrumentConfigured

    outputs = engine.process(log.make(GateInstrumentConfigured, symbol="NOPE"))
    assert isinstance(outputs[0], Rejected) and outputs[0].field == "symbol"


def test_cross_order_of_an_account_holding_an_option_fails_closed() -> None:
    """A cross account short an option in the same settlement asset, without a published
    option mark, is refused rather than margined without the option's risk."""
    option = "ETHUSDC-27MAR26-3000-C"
    log = gated_exchange({PERP: "50000"}, {"alice": {"USDT": "10000"}, "mm": {"USDT": "100000"}})
    log.listing(option)
    log.fill(option, "100", "1", buyer="mm", seller="alice")
    engine, _ = run(log.events, gated_engine())
    outputs, before = _decide(log, engine, order(log, "o1", "alice", PERP, "buy", "0.01", "50000"))
    rejection = _rejected(outputs)
    assert (rejection.reason, rejection.field, rejection.value) == (
        R.OPTION_MARK_MISSING, "symbol", option,
    )  # fmt: skip
    assert engine.state_hash() == before
