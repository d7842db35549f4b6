"""Spot cross margin in the ledger: borrow, repay, hourly interest, margin level, the pool."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.engine import Engine
from fengkong.ledger.loans import (
    LENDING,
    Borrow,
    InterestAccrued,
    InterestDue,
    LoanAssetConfigured,
    LoanRejected,
    LoanRejectReason,
    LoanRepaid,
    Repay,
    SpotMarginConfigured,
)
from fengkong.margin.spot import MarginLevelState
from fengkong.market.events import SourcePrice
from fengkong.model.events import Rejected, RejectReason, Transfer, Withdrawal
from tests.factories import T0, Log, exchange, priced, run

H = 3_600_000
M = 60_000
DAY = T0  # 2026-01-01T00:00Z


def margin_log(
    *, usdt_rate: str = "0.0002", btc_rate: str = "0.0001", price: str = "60000", **accounts
) -> Log:
    """BTC/USDT spot priced at ``price``, spot margin in USDT (cross 3x thresholds), both
    assets borrowable, a pool of 1,000,000 USDT and 100 BTC, and funded accounts."""
    log = exchange("BTCUSDT", accounts={"alice": {"USDT": "10000"}, **accounts})
    priced(log, "BTCUSDT", price)
    log.make(SpotMarginConfigured, valuation_asset="USDT")
    log.make(LoanAssetConfigured, asset="USDT", daily_rate=usdt_rate)
    log.make(LoanAssetConfigured, asset="BTC", daily_rate=btc_rate, price_symbol="BTCUSDT")
    log.deposit(LENDING, "USDT", "1000000")
    log.deposit(LENDING, "BTC", "100")
    return log


def at(hours: int, minutes: int = 0) -> int:
    """An event time on 2026-01-01 (clock hours matter to interest), after the set-up."""
    return DAY + hours * H + minutes * M


def quote(log: Log, ts: int, price: str = "60000") -> None:
    """Fresh quotes of every BTCUSDT index source at ``ts`` (the mark stays usable for the
    index's 10-minute staleness limit)."""
    for i in range(3):
        log.make(SourcePrice, ts=ts, source=f"src{i}", symbol="BTCUSDT-IX", price=price, time=ts)


def _engine(log: Log) -> tuple[Engine, list]:
    return run(log.events, Engine())


def test_interest_binance_example_borrow_1320_repay_1415_two_hours() -> None:
    """Binance, "Margin interest" (https://www.binance.com/en/support/articles/360030157812;
    margin-mechanics.md §3 [P]): 1,000 USDT borrowed at 13:20 and repaid at 14:15 at 0.02 % a
    day pays 1000 × (0.02 % / 24) × 2 = 0.01666667 USDT (first hour at borrowing, one more at
    14:00; rounded up once on the exact sum)."""
    log = margin_log(usdt_rate="0.0002")
    log.make(Borrow, ts=at(13, 20), account="alice", asset="USDT", amount="1000")
    log.make(Repay, ts=at(14, 15), account="alice", asset="USDT", amount="1000.01666667")
    engine, outputs = _engine(log)
    repaid = [o for o in outputs if isinstance(o, LoanRepaid)]
    assert repaid == [
        LoanRepaid(seq=repaid[0].seq, id=repaid[0].id, account="alice", asset="USDT",
                   interest=1_666_667, principal=100_000_000_000, closed=True)
    ]  # fmt: skip
    loans = engine.component("ledger").loans
    assert loans.loan("alice", "USDT") is None


def test_interest_binance_example_hourly_rate_borrow_1355_now_1430() -> None:
    """Binance, "New dynamic interest rate system" (https://binance.com/en/support/faq/
    new-dynamic-interest-rate-system-for-binance-margin-trading-360030157812; §3 [P]):
    1,000 USDT at an hourly rate of 0.001 % (0.024 % a day), borrowed 13:55, at 14:30 owes
    0.02 USDT interest."""
    log = margin_log(usdt_rate="0.00024")
    log.make(Borrow, ts=at(13, 55), account="alice", asset="USDT", amount="1000")
    log.make(InterestDue, ts=at(14))
    engine, outputs = _engine(log)
    assert [o.loans for o in outputs if isinstance(o, InterestAccrued)] == [1]
    loans = engine.component("ledger").loans
    assert loans.debt("alice", "USDT", at(14, 30)) == (100_000_000_000, 2_000_000)
    # the InterestDue did not change what is owed at 14:30: accrual is lazy and exact
    assert loans.debt("alice", "USDT", at(14, 59)) == (100_000_000_000, 2_000_000)
    assert loans.debt("alice", "USDT", at(15)) == (100_000_000_000, 3_000_000)


def test_margin_level_is_assets_over_liabilities_plus_interest() -> None:
    """§3: Margin Level = Total Asset Value / (Total Liabilities + Outstanding Interest) [C].
    Alice deposits 1 BTC (60,000 USDT) and borrows 30,000 USDT at 0.024 %/day (0.001 %/h):
    assets 60,000 + 30,000 = 90,000, debt 30,000 + 0.3 (first hour) → level 2.99997; after
    BTC falls to 36,000 the assets are 66,000 → 2.19998; at 4,000 the level is 1.1333 (margin
    call) and at 3,000 1.0999, at or below 1.1: liquidation."""
    log = margin_log(usdt_rate="0.00024", bob={"BTC": "1"})
    quote(log, at(10))
    log.make(Borrow, ts=at(10), account="bob", asset="USDT", amount="30000")
    engine, outputs = _engine(log)
    assert not [o for o in outputs if isinstance(o, (LoanRejected, Rejected))]
    loans = engine.component("ledger").loans
    now = at(10, 5)
    assert loans.debt("bob", "USDT", now) == (3_000_000_000_000, 30_000_000)
    assert loans.margin_level("bob", now) == Fraction(90_000, Fraction("30000.3"))
    level = loans.margin_level("bob", now, {"BTC": Fraction(36_000)})
    assert level == Fraction(66_000, Fraction("30000.3"))
    assert loans.level_state("bob", now, {"BTC": Fraction(36_000)}) is MarginLevelState.FULL
    call = {"BTC": Fraction(4_000)}
    assert loans.level_state("bob", now, call) is MarginLevelState.MARGIN_CALL
    liquidation = {"BTC": Fraction(3_000)}
    assert loans.level_state("bob", now, liquidation) is MarginLevelState.LIQUIDATION


def test_borrow_limit_is_the_3x_leverage_level_and_max_borrowable_is_exact() -> None:
    """Cross 3x: borrowing only while the level after the loan stays above 1.5 = 3 / (3 − 1)
    (§3 thresholds): 10,000 USDT of equity can carry just under 20,000 USDT of debt."""
    log = margin_log(usdt_rate="0")
    engine, _ = _engine(log)
    loans = engine.component("ledger").loans
    now = at(12)
    most = loans.max_borrowable("alice", "USDT", now)
    assert most == 2_000_000_000_000 - 1  # just below 20,000 USDT, to the unit
    _, outputs = run(
        [
            Borrow(seq=engine.last_seq + 1, id="b1", ts=now, account="alice", asset="USDT",
                   amount="20000"),
            Borrow(seq=engine.last_seq + 2, id="b2", ts=now, account="alice", asset="USDT",
                   amount="19999.99999999"),
        ],
        engine,
    )  # fmt: skip
    assert [type(o).__name__ for o in outputs] == ["LoanRejected"]
    assert outputs[0].reason is LoanRejectReason.BORROW_LIMIT
    assert loans.margin_level("alice", now) > Fraction(3, 2)


def test_refusals_are_typed_and_change_nothing() -> None:
    log = margin_log(bob={"BTC": "1"})
    quote(log, at(12))
    engine, _ = _engine(log)
    before = engine.state_hash()
    cases = [
        (Borrow, dict(account="nobody", asset="USDT", amount="1"), "unknown_account"),
        (Borrow, dict(account=LENDING, asset="USDT", amount="1"), "unknown_account"),
        (Borrow, dict(account="alice", asset="DOGE", amount="1"), "unknown_asset"),
        (Borrow, dict(account="alice", asset="ETH", amount="1"), "not_configured"),
        (Borrow, dict(account="alice", asset="USDT", amount="-1"), "invalid_number"),
        (Borrow, dict(account="alice", asset="USDT", amount="1.000000001"), "invalid_number"),
        (Borrow, dict(account="alice", asset="BTC", amount="101"), "pool_insufficient"),
        (Borrow, dict(account="alice", asset="USDT", amount="25000"), "borrow_limit"),
        (Repay, dict(account="alice", asset="USDT", amount="1"), "no_loan"),
        (LoanAssetConfigured, dict(asset="BTC", daily_rate="0.1"), "invalid_parameter"),
        (LoanAssetConfigured, dict(asset="BTC", daily_rate="2", price_symbol="BTCUSDT"),
         "invalid_number"),
        (SpotMarginConfigured, dict(valuation_asset="USDT", borrow_level="2.5"),
         "invalid_parameter"),
        (SpotMarginConfigured, dict(valuation_asset="BTC"), "invalid_parameter"),
    ]  # fmt: skip
    seq = engine.last_seq
    for kind, fields, reason in cases:
        seq += 1
        outputs = engine.process(kind(seq=seq, id=f"x{seq}", ts=at(12), **fields))
        assert [(type(o), o.reason.value) for o in outputs] == [(LoanRejected, reason)], fields
        assert engine.state_hash() == before
    # repay more than owed / more than held
    seq += 1
    engine.process(Borrow(seq=seq, id="ok", ts=at(12), account="bob", asset="USDT", amount="100"))
    after_borrow = engine.state_hash()
    for amount, reason in (("100.1", "repay_exceeds_debt"),):
        seq += 1
        outputs = engine.process(
            Repay(seq=seq, id=f"r{seq}", ts=at(12), account="bob", asset="USDT", amount=amount)
        )
        assert outputs[0].reason.value == reason
        assert engine.state_hash() == after_borrow


def test_stale_price_fails_closed() -> None:
    """Without a usable BTC mark the level cannot be computed: the borrow is refused."""
    log = margin_log(bob={"BTC": "1"})
    engine, _ = _engine(log)
    before = engine.state_hash()
    late = at(20)  # every index source is older than its staleness limit by then
    outputs = engine.process(
        Borrow(seq=engine.last_seq + 1, id="late", ts=late, account="bob", asset="USDT",
               amount="100")
    )  # fmt: skip
    assert outputs[0].reason is LoanRejectReason.PRICE_UNAVAILABLE
    assert engine.state_hash() == before


def test_derivative_holders_cannot_borrow() -> None:
    log = margin_log()
    log.listing("BTCUSDT-PERP")
    log.account("mm")
    log.deposit("mm", "USDT", "1000000")
    log.fill("BTCUSDT-PERP", "60000", "0.01", buyer="alice", seller="mm")
    log.make(Borrow, ts=at(12), account="alice", asset="USDT", amount="10")
    _, outputs = _engine(log)
    assert outputs[-1].reason is LoanRejectReason.POSITION_OPEN


def test_withdrawal_keeps_the_level_above_the_transfer_out_level() -> None:
    """§3: no transfer out at or below a margin level of 2."""
    log = margin_log(usdt_rate="0")
    log.make(Borrow, ts=at(12), account="alice", asset="USDT", amount="10000")
    # 20,000 assets / 10,000 debt = 2: no transfer out at all; deposit 1,000 more: 1,000 out
    # would leave exactly 2 (refused), 999 leaves 2.0001 (accepted)
    log.deposit("alice", "USDT", "1000")
    log.make(Withdrawal, ts=at(12), account="alice", asset="USDT", amount="1000")
    log.make(Transfer, ts=at(12), from_account="alice", to_account=LENDING, asset="USDT",
             amount="1000")  # fmt: skip
    log.make(Withdrawal, ts=at(12), account="alice", asset="USDT", amount="999")
    _, outputs = _engine(log)
    refused = [o for o in outputs if isinstance(o, Rejected)]
    assert [(o.event_type, o.reason) for o in refused] == [
        ("Withdrawal", RejectReason.INSUFFICIENT_BALANCE),
        ("Transfer", RejectReason.INSUFFICIENT_BALANCE),
    ]


def test_rate_change_charges_earlier_hours_at_the_old_rate() -> None:
    log = margin_log(usdt_rate="0.00024")  # 0.001 %/h
    log.make(Borrow, ts=at(10, 30), account="alice", asset="USDT", amount="1000")
    log.make(LoanAssetConfigured, ts=at(12, 10), asset="USDT", daily_rate="0.00048")
    engine, _ = _engine(log)
    # hours 10, 11, 12 at 0.01 USDT; 13 and 14 at 0.02
    assert engine.component("ledger").loans.debt("alice", "USDT", at(14, 5))[1] == 7_000_000


def test_snapshot_restore_keeps_loans_and_hash() -> None:
    log = margin_log(bob={"BTC": "1"})
    quote(log, at(10, 30))
    log.make(Borrow, ts=at(10, 30), account="bob", asset="USDT", amount="5000")
    log.make(Borrow, ts=at(10, 40), account="alice", asset="BTC", amount="0.05")
    log.make(InterestDue, ts=at(11))
    engine, _ = _engine(log)
    restored = Engine.restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    tail = [Repay(seq=engine.last_seq + 1, id="r", ts=at(11, 30), account="bob", asset="USDT",
                  amount="1000")]  # fmt: skip
    run(tail, engine)
    run(tail, restored)
    assert restored.state_hash() == engine.state_hash()


_ops = st.lists(
    st.tuples(
        st.sampled_from(["borrow", "repay", "interest", "withdraw"]),
        st.sampled_from(["alice", "bob"]),
        st.sampled_from(["USDT", "BTC"]),
        st.integers(1, 3_000_000_000_000),
        st.integers(0, 50 * M),  # minutes forward
        st.integers(20_000, 90_000),  # BTC price
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(ops=_ops)
def test_borrow_repay_interest_conserve_every_asset_and_refusals_change_nothing(ops) -> None:
    """Per asset, the sum over all accounts (pool included) changes only by deposits and
    withdrawals; a refused loan event leaves the state hash unchanged; a repaid loan never
    owes negative interest; free balances never go negative."""
    log = margin_log(bob={"BTC": "1", "USDT": "500"})
    engine, _ = _engine(log)
    ledger = engine.component("ledger")
    totals = ledger.asset_totals()
    ts = at(10)
    seq = engine.last_seq
    for kind, account, asset, units, forward, price in ops:
        ts += forward
        for i in range(3):  # fresh BTC quotes, so that the level can be computed
            seq += 1
            engine.process(SourcePrice(seq=seq, id=f"q{seq}", ts=ts, source=f"src{i}",
                                       symbol="BTCUSDT-IX", price=str(price), time=ts))  # fmt: skip
        seq += 1
        scale = ledger.assets[asset].scale
        text = f"{units // 10**scale}.{units % 10**scale:0{scale}d}"
        if asset == "BTC":
            text = f"{units // 10**12}.{units // 10**4 % 10**8:08d}" if units >= 10**4 else "0.1"
        if kind == "repay" and ledger.loans.loan(account, asset) is not None:
            owed = sum(ledger.loans.debt(account, asset, ts))  # a share of it, or all of it
            share = owed if units % 3 == 0 else max(1, owed * (units % 1000) // 1000)
            text = f"{share // 10**scale}.{share % 10**scale:0{scale}d}"
        common = dict(seq=seq, id=f"o{seq}", ts=ts)
        if kind == "interest":
            event = InterestDue(**common)
        else:
            kinds = {"borrow": Borrow, "repay": Repay, "withdraw": Withdrawal}
            event = kinds[kind](**common, account=account, asset=asset, amount=text)
        before = engine.state_hash()
        outputs = engine.process(event)
        refused = any(isinstance(o, (LoanRejected, Rejected)) for o in outputs)
        if refused:
            assert engine.state_hash() == before
        elif kind == "withdraw":
            units_out = ledger._amount(asset, text)
            totals[asset] -= units_out
        assert ledger.asset_totals() == totals
        for name in ("alice", "bob", LENDING):
            for balance in ledger.accounts[name].balances.values():
                assert balance.free >= 0
        for loans in ledger.loans.by_account.values():
            for loan in loans.values():
                assert loan.principal >= 0 and loan.interest() >= 0


def test_the_valuation_asset_counts_even_when_not_borrowable() -> None:
    """Only BTC borrowable: Carol's USDT collateral still counts at 1 in the level."""
    log = exchange("BTCUSDT", accounts={"carol": {"USDT": "10000"}})
    priced(log, "BTCUSDT", "60000")
    log.make(SpotMarginConfigured, valuation_asset="USDT")
    log.make(LoanAssetConfigured, asset="BTC", daily_rate="0", price_symbol="BTCUSDT")
    log.deposit(LENDING, "BTC", "1")
    engine, _ = _engine(log)
    loans = engine.component("ledger").loans
    prices = {"BTC": Fraction(60_000)}
    assert loans.asset_value("carol", log.ts, prices) == (10_000 * 10**8, 0)
    assert loans.max_borrowable("carol", "BTC", log.ts, prices) == 33_333_333  # 20,000 USDT
