"""The gate's spot-margin orders (free or borrowable balance, auto-borrow, auto-repay) and
option orders (long: premium; short: standard margin at the published option mark)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.gate.events import (
    GateInstrumentConfigured,
    OptionMarginConfigured,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderRejectReason,
)
from fengkong.ledger.loans import LENDING, LoanAssetConfigured, LoanRepaid, SpotMarginConfigured
from fengkong.margin.options import (
    YEAR_MS,
    black76_value,
    deribit_short_option_margin,
    okx_short_option_margin,
    otm_amount,
)
from fengkong.market.events import OptionMark
from fengkong.model.enums import OptionKind
from fengkong.model.events import InstrumentListed
from tests.factories import EXPIRY, LISTINGS, gated_engine, gated_exchange, order, run

R = OrderRejectReason
PERP, SPOT = "BTCUSDT-PERP", "BTCUSDT"
CALL, PUT = "BTC-27MAR26-70000-C", "BTC-27MAR26-60000-P"
USDT = 10**8


def _margin_exchange(*, configure: bool = True, **accounts):
    log = gated_exchange(
        {PERP: "50000", SPOT: "50000"},
        {"alice": {"USDT": "10000"}, "mm": {"USDT": "10000000", "BTC": "100"}, **accounts},
    )
    if configure:
        log.make(SpotMarginConfigured, valuation_asset="USDT")
        log.make(LoanAssetConfigured, asset="USDT", daily_rate="0.00024")  # 0.001 %/h
        log.make(LoanAssetConfigured, asset="BTC", daily_rate="0.00024", price_symbol=SPOT)
        log.deposit(LENDING, "USDT", "1000000")
        log.deposit(LENDING, "BTC", "10")
    return log


def _run(log):
    engine, _ = run(log.events, gated_engine())
    return engine, engine.component("gate"), engine.component("ledger")


def _one(outputs):
    assert len(outputs) == 1, outputs
    return outputs[0]


def test_spot_margin_buy_borrows_the_shortfall_and_locks_the_whole_order() -> None:
    """Buy 0.5 BTC at 50,000 with 10,000 USDT: the lock is 25,025 (0.1 % fee reserve); the
    15,025 the free balance lacks is borrowed at acceptance (Binance MARGIN_BUY)."""
    log = _margin_exchange()
    engine, gate, ledger = _run(log)
    plain = _one(engine.process(order(log, "p", "alice", SPOT, "buy", "0.5", "50000")))
    assert plain.reason is R.INSUFFICIENT_BALANCE
    accepted = _one(
        engine.process(order(log, "m", "alice", SPOT, "buy", "0.5", "50000", margin=True))
    )
    assert isinstance(accepted, OrderAccepted) and accepted.reserved == 25_025 * USDT
    usdt = ledger.accounts["alice"].balances["USDT"]
    assert (usdt.free, usdt.locked) == (0, 25_025 * USDT)
    assert ledger.loans.debt("alice", "USDT", log.ts) == (15_025 * USDT, 15_025 * 10**3)
    assert gate.borrowed == {"m": ("USDT", 15_025 * USDT)}


def test_spot_margin_order_beyond_the_borrowable_balance_is_refused() -> None:
    """10,000 USDT of equity carries under 20,000 USDT of debt (3x: level above 1.5): a buy
    locking 35,035 would need 25,035."""
    log = _margin_exchange()
    engine, _gate, _ledger = _run(log)
    before = engine.state_hash()
    refused = _one(
        engine.process(order(log, "m", "alice", SPOT, "buy", "0.7", "50000", margin=True))
    )
    assert refused.reason is R.INSUFFICIENT_BALANCE and "borrowable" in refused.message
    assert engine.state_hash() == before


def test_cancel_auto_repays_the_unused_loan_with_its_interest() -> None:
    log = _margin_exchange()
    engine, gate, ledger = _run(log)
    engine.process(order(log, "m", "alice", SPOT, "buy", "0.5", "50000", margin=True))
    outputs = engine.process(log.make(OrderDone, order_id="m", reason="cancelled"))
    repaid = _one(outputs)
    assert isinstance(repaid, LoanRepaid) and repaid.closed
    assert (repaid.interest, repaid.principal) == (15_025 * 10**3, 15_025 * USDT)
    usdt = ledger.accounts["alice"].balances["USDT"]
    assert (usdt.free, usdt.locked) == (10_000 * USDT - 15_025 * 10**3, 0)  # one hour paid
    assert ledger.loans.by_account == {} and gate.borrowed == {}


def test_filled_margin_buy_keeps_its_loan() -> None:
    log = _margin_exchange()
    engine, gate, ledger = _run(log)
    engine.process(order(log, "m", "alice", SPOT, "buy", "0.5", "50000", margin=True))
    engine.process(log.fill(SPOT, "50000", "0.5", buyer="alice", seller="mm", buy_order_id="m",
                            taker_fee_rate="0.001"))  # fmt: skip
    assert engine.process(log.make(OrderDone, order_id="m", reason="filled")) == []  # no repay
    assert ledger.accounts["alice"].balances["BTC"].free == 50_000_000
    assert ledger.loans.debt("alice", "USDT", log.ts)[0] == 15_025 * USDT
    assert gate.borrowed == {}


def test_spot_margin_sell_borrows_the_base_asset() -> None:
    """A margin sell of BTC the account does not hold borrows it (a short)."""
    log = _margin_exchange()
    engine, _gate, ledger = _run(log)
    accepted = _one(
        engine.process(order(log, "s", "alice", SPOT, "sell", "0.1", "50000", margin=True))
    )
    assert isinstance(accepted, OrderAccepted) and accepted.asset == "BTC"
    assert ledger.loans.debt("alice", "BTC", log.ts)[0] == 10_000_000
    assert ledger.accounts["alice"].balances["BTC"].locked == 10_000_000


def test_spot_margin_fail_closed_and_typed_refusals() -> None:
    # not configured: the loan is unavailable
    log = _margin_exchange(configure=False)
    engine, _gate, _ledger = _run(log)
    refused = _one(
        engine.process(order(log, "m", "alice", SPOT, "buy", "0.5", "50000", margin=True))
    )
    assert refused.reason is R.BORROW_UNAVAILABLE
    # a held asset without a usable mark: the margin level cannot be computed
    log = _margin_exchange(alice={"USDT": "10000", "ETH": "1"})
    log.make(InstrumentListed, symbol="ETHUSDT", **{**LISTINGS[SPOT], "base": "ETH"})
    log.make(LoanAssetConfigured, asset="ETH", daily_rate="0.0001", price_symbol="ETHUSDT")
    engine, _gate, _ledger = _run(log)
    before = engine.state_hash()
    refused = _one(
        engine.process(order(log, "m", "alice", SPOT, "buy", "0.5", "50000", margin=True))
    )
    assert refused.reason is R.VALUATION_PRICE_MISSING
    assert engine.state_hash() == before
    # margin flag on a derivative order; a derivative order from an indebted account
    log = _margin_exchange()
    engine, _gate, _ledger = _run(log)
    assert _one(engine.process(order(log, "d", "alice", PERP, "buy", "0.01", "50000",
                                     margin=True))).reason is R.INVALID_ORDER  # fmt: skip
    engine.process(order(log, "m", "alice", SPOT, "buy", "0.5", "50000", margin=True))
    refused = _one(engine.process(order(log, "d", "alice", PERP, "buy", "0.01", "50000")))
    assert refused.reason is R.SPOT_MARGIN_ACCOUNT


_requests = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 800),  # thousandths of a BTC
        st.integers(-2000, 2000),  # price offset from 50,000
        st.booleans(),  # margin
        st.sampled_from(["cancel", "fill", "keep"]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(requests=_requests, usdt=st.integers(100, 30_000), btc=st.integers(0, 300))
def test_spot_margin_orders_keep_balances_and_reservations_exact(requests, usdt, btc) -> None:
    """Accepting never makes a free balance negative; a rejection leaves the hash unchanged;
    per-asset totals never change; cancelling releases the lock exactly and repays the
    unused loan (the account ends with what it had less the interest it paid)."""
    accounts = {"alice": {"USDT": str(usdt), **({"BTC": f"0.{btc:03d}"} if btc else {})}}
    log = _margin_exchange(**accounts)
    engine, gate, ledger = _run(log)
    totals = ledger.asset_totals()
    for i, (side, thousandths, offset, margin, then) in enumerate(requests):
        log.ts += 1000
        qty = f"{thousandths // 1000}.{thousandths % 1000:03d}"
        before = engine.state_hash()
        balances = {a: (b.free, b.locked) for a, b in ledger.accounts["alice"].balances.items()}
        event = order(log, f"o{i}", "alice", SPOT, side, qty, str(50_000 + offset), margin=margin)
        answer = engine.process(event)[0]
        if isinstance(answer, OrderRejected):
            assert engine.state_hash() == before
            continue
        for balance in ledger.accounts["alice"].balances.values():
            assert balance.free >= 0 and balance.locked >= 0
        assert ledger.asset_totals() == totals
        if then == "cancel":
            borrowed = gate.borrowed.get(f"o{i}", ("USDT", 0))
            outputs = engine.process(
                log.make(OrderDone, order_id=f"o{i}", reason="cancelled", ts=log.ts)
            )
            repaid = {o.asset: o.interest + o.principal for o in outputs
                      if isinstance(o, LoanRepaid)}  # fmt: skip
            after = {a: (b.free, b.locked) for a, b in ledger.accounts["alice"].balances.items()}
            for asset, (free, locked) in after.items():
                old_free, old_locked = balances.get(asset, (0, 0))
                assert locked == old_locked  # the lock is released exactly
                lent = borrowed[1] if borrowed[0] == asset else 0
                assert free == old_free + lent - repaid.get(asset, 0)
        elif then == "fill":
            counter = {"buyer": "mm", "seller": "alice"} if side == "sell" else {
                "buyer": "alice", "seller": "mm"}  # fmt: skip
            ids = {"sell_order_id": f"o{i}"} if side == "sell" else {"buy_order_id": f"o{i}"}
            engine.process(log.fill(SPOT, str(50_000 + offset), qty, **counter, **ids))
            engine.process(log.make(OrderDone, order_id=f"o{i}", reason="filled"))
        assert ledger.asset_totals() == totals
        for balance in ledger.accounts["alice"].balances.values():
            assert balance.free >= 0 and balance.locked >= 0


# --- options ------------------------------------------------------------------------------


def _option_exchange(iv: str = "0.65", underlying: str = "60000", *, mark: bool = True):
    log = gated_exchange({PERP: "50000"}, {"alice": {"BTC": "10"}, "mm": {"BTC": "100"}})
    for symbol in (CALL, PUT):
        log.listing(symbol)
        log.make(GateInstrumentConfigured, symbol=symbol, price_band="0.5")
        if mark:
            log.make(OptionMark, symbol=symbol, underlying_price=underlying, mark_iv=iv)
    return log


def _expected_mark(kind: OptionKind, strike: int, ts: int, iv: str = "0.65") -> Fraction:
    forward = Fraction(60_000)
    value = black76_value(kind, forward, Fraction(strike), Fraction(iv),
                          Fraction(EXPIRY - ts, YEAR_MS))  # fmt: skip
    return value / forward  # BTC per 1 BTC option (coin-settled)


def test_long_option_reserves_premium_plus_fee() -> None:
    """Long options pay the premium (margin-mechanics.md §4.2, §5.2: IM = MM = 0)."""
    log = _option_exchange()
    engine, _gate, _ledger = _run(log)
    accepted = _one(engine.process(order(log, "c", "alice", CALL, "buy", "2", "0.05")))
    assert isinstance(accepted, OrderAccepted) and accepted.asset == "BTC"
    assert accepted.reserved == 2 * 5_000_000 + 10_000  # 0.1 BTC premium + 0.1 % reserve


def test_short_call_reserves_deribit_initial_margin_at_the_option_mark_less_premium() -> None:
    """Deribit short call IM = max(0.15 − OTM/S, 0.1) + mark per 1 BTC (§5.2, the formula of
    the [C] table 70k / 62k / 55k calls, 58k put), mark from Black-76 on the published IV;
    a sell-to-open reserves IM − premium received + fee reserve."""
    log = _option_exchange()
    engine, _gate, _ledger = _run(log)
    published = engine.component("market").option_mark(CALL)
    mark = _expected_mark(OptionKind.CALL, 70_000, published[0])
    im, _mm = deribit_short_option_margin(OptionKind.CALL, Fraction(70_000), Fraction(60_000),
                                          mark)  # fmt: skip
    assert im == max(Fraction(15, 100) - Fraction(10_000, 60_000), Fraction(1, 10)) + mark
    accepted = _one(engine.process(order(log, "s", "alice", CALL, "sell", "2", "0.05")))
    premium, fee = 2 * 5_000_000, 10_000
    expected = -((-im * 2 * 10**8).numerator // (im * 2 * 10**8).denominator)
    assert accepted.reserved == expected - premium + fee


def test_short_put_okx_model_when_configured() -> None:
    """OKX short IMR = max(a, b − OTM/F) × MarginFactor + mark (§4.2), MarginFactor 1.02."""
    log = _option_exchange()
    log.make(OptionMarginConfigured, symbol=PUT, model="okx", margin_factor="1.02")
    engine, _gate, _ledger = _run(log)
    published = engine.component("market").option_mark(PUT)
    mark = _expected_mark(OptionKind.PUT, 60_000, published[0])
    otm = otm_amount(OptionKind.PUT, Fraction(60_000), Fraction(60_000))
    imr, _ = okx_short_option_margin(OptionKind.PUT, otm, Fraction(60_000), mark,
                                     Fraction("1.02"))  # fmt: skip
    accepted = _one(engine.process(order(log, "s", "alice", PUT, "sell", "1", "0.12")))
    scaled = imr * 10**8
    assert accepted.reserved == -((-scaled.numerator) // scaled.denominator) - 12_000_000 + 12_000


def test_short_option_position_reduces_available_margin_in_its_asset() -> None:
    log = _option_exchange()
    log.fill(CALL, "0.05", "2", buyer="mm", seller="alice")
    engine, gate, ledger = _run(log)
    wallet = ledger.accounts["alice"].balances["BTC"].free
    published = engine.component("market").option_mark(CALL)
    mark = _expected_mark(OptionKind.CALL, 70_000, published[0])
    im, _ = deribit_short_option_margin(OptionKind.CALL, Fraction(70_000), Fraction(60_000), mark)
    scaled = im * 2 * 10**8
    assert gate.available_margin("alice", "BTC", log.ts) == wallet + (
        (-scaled.numerator) // scaled.denominator
    )


def test_option_orders_fail_closed_without_a_fresh_option_mark() -> None:
    log = _option_exchange(mark=False)
    engine, _gate, _ledger = _run(log)
    before = engine.state_hash()
    refused = _one(engine.process(order(log, "c", "alice", CALL, "buy", "1", "0.05")))
    assert refused.reason is R.OPTION_MARK_MISSING and engine.state_hash() == before
    log = _option_exchange()
    engine, _gate, _ledger = _run(log)
    stale = order(log, "c", "alice", CALL, "buy", "1", "0.05", ts=log.ts + 61_000)
    refused = _one(engine.process(stale))
    assert refused.reason is R.OPTION_MARK_STALE


def test_snapshot_restore_keeps_loans_borrowed_orders_and_the_debtor_rule() -> None:
    log = _margin_exchange()
    engine, _gate, _ledger = _run(log)
    engine.process(order(log, "m", "alice", SPOT, "buy", "0.5", "50000", margin=True))
    restored = type(engine).restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    assert restored.component("gate").borrowed == {"m": ("USDT", 15_025 * USDT)}
    perp = order(log, "d", "alice", PERP, "buy", "0.01", "50000")
    assert _one(restored.process(perp)).reason is R.SPOT_MARGIN_ACCOUNT
    assert _one(engine.process(perp)).reason is R.SPOT_MARGIN_ACCOUNT
    done = log.make(OrderDone, order_id="m", reason="cancelled")
    assert restored.process(done) == engine.process(done)
    assert restored.state_hash() == engine.state_hash()
