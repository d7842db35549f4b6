"""Spot cross-margin liquidation at the ledger level (fengkong.liquidation.spot)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.engine.component import RejectError
from fengkong.ledger.loans import LENDING, Borrow, LoanRepaid
from fengkong.ledger.state import INSURANCE, LIQUIDATION
from fengkong.liquidation.spot import SpotLiquidationTrade, liquidate_spot_margin, margin_level
from fengkong.model.events import BadDebt, Deposit, RejectReason
from tests.factories import run
from tests.ledger.test_loans import _engine, at, margin_log, quote

FEE = Fraction(1, 100)


def leveraged_long(insurance: str = "1000"):
    """Bob deposits 1 BTC, borrows 30,000 USDT (0.001 %/h) at 10:00 and buys 0.5 BTC at 60,000:
    1.5 BTC held, 30,000.3 USDT owed. ``sys:liquidation`` holds 100,000 USDT to buy
    collateral with; the insurance fund ``insurance`` USDT."""
    log = margin_log(usdt_rate="0.00024", bob={"BTC": "1"}, mm={"BTC": "10"})
    quote(log, at(10))
    log.make(Borrow, ts=at(10), account="bob", asset="USDT", amount="30000")
    log.fill("BTCUSDT", "60000", "0.5", buyer="bob", seller="mm")
    log.make(Deposit, account=LIQUIDATION, asset="USDT", amount="100000")
    if insurance != "0":
        log.make(Deposit, account=INSURANCE, asset="USDT", amount=insurance)
    engine, outputs = _engine(log)
    assert not [o for o in outputs if type(o).__name__.endswith("Rejected")]
    return engine


def test_margin_level_of_a_leveraged_long_at_given_prices() -> None:
    """§3 [C]: 1.5 BTC against 30,000.3 USDT: at 24,000 the level is 36,000 / 30,000.3
    (margin call, ≤ 1.3), at 22,000 it is 33,000 / 30,000.3 = 1.09999 (liquidation, ≤ 1.1)."""
    ledger = leveraged_long().component("ledger")
    now = at(10, 5)
    assert margin_level(ledger, "bob", {"BTC": Fraction(24_000)}, now) == Fraction(
        36_000, Fraction("30000.3")
    )
    assert margin_level(ledger, "bob", {"BTC": Fraction(22_000)}, now) < Fraction(11, 10)
    assert margin_level(ledger, "alice", {"BTC": Fraction(22_000)}, now) is None
    with pytest.raises(RejectError) as refused:
        margin_level(ledger, "bob", {}, now)
    assert refused.value.reason is RejectReason.MARGIN_CHECK_UNAVAILABLE


def test_liquidation_sells_just_enough_collateral_to_restore_the_call_level() -> None:
    """At 22,000 (level 1.09999) selling value v at a 1 % fee moves the level to
    (33,000 − v) / (30,000.3 − 0.99 v) > 1.3 for v > 20,907.28: about 0.9503 BTC."""
    engine = leveraged_long()
    ledger = engine.component("ledger")
    totals = ledger.asset_totals()
    prices = {"BTC": Fraction(22_000)}
    now = at(10, 5)
    done = liquidate_spot_margin(ledger, "bob", prices, now, seq=99, event_id="liq", fee_rate=FEE)
    assert ledger.asset_totals() == totals
    assert done.complete and done.level_before < Fraction(11, 10) < Fraction(13, 10)
    assert Fraction(13, 10) < done.level_after < Fraction(13, 10) + Fraction(1, 10**6)
    trades = [o for o in done.outputs if isinstance(o, SpotLiquidationTrade)]
    assert len(trades) == 1
    trade = trades[0]
    assert (trade.sold_asset, trade.bought_asset) == ("BTC", "USDT")
    v = (Fraction(13, 10) * Fraction("30000.3") - 33_000) / (Fraction(13, 10) * (1 - FEE) - 1)
    assert trade.sold == -((-v * 10**8) // 22_000)  # ceil(v / price), in satoshi
    assert trade.bought == trade.sold * 22_000  # 1 sat at 22,000 = 22,000 units of USDT
    assert trade.fee == -((-trade.bought) // 100)
    repaid = [o for o in done.outputs if isinstance(o, LoanRepaid)]
    assert repaid[0].interest == 30_000_000  # interest first: the 0.3 USDT of the first hour
    assert sum(r.interest + r.principal for r in repaid) == trade.bought - trade.fee
    assert done.fees == {"USDT": trade.fee}
    assert ledger.accounts[INSURANCE].balances["USDT"].free == 1000 * 10**8 + trade.fee


def test_liquidation_beyond_the_collateral_leaves_bad_debt_to_the_fund_then_the_pool() -> None:
    """At 10,000 the 1.5 BTC fetch 15,000 USDT, 14,850 after the 1 % fee; 15,150.3 remains:
    the fund pays 1,000 of it to the pool, 14,150.3 is written off (reported)."""
    engine = leveraged_long(insurance="1000")
    ledger = engine.component("ledger")
    totals = ledger.asset_totals()
    done = liquidate_spot_margin(
        ledger, "bob", {"BTC": Fraction(10_000)}, at(10, 5), seq=99, event_id="liq", fee_rate=FEE
    )
    assert ledger.asset_totals() == totals
    assert done.complete and done.level_after is None
    bad = [o for o in done.outputs if isinstance(o, BadDebt)]
    assert bad == [
        BadDebt(seq=99, id="liq", account="bob", asset="USDT", shortfall=1_515_030_000_000,
                insurance=100_000_000_000, socialized=1_415_030_000_000)
    ]  # fmt: skip
    assert ledger.loans.loan("bob", "USDT") is None
    assert ledger.accounts["bob"].balances["BTC"].free == 0
    assert ledger.accounts[INSURANCE].balances["USDT"].free == 150 * 10**8  # the fee stays


def test_refusals_change_nothing() -> None:
    engine = leveraged_long()
    ledger = engine.component("ledger")
    before = engine.state_hash()
    prices = {"BTC": Fraction(22_000)}
    cases = [
        (dict(account_id="nobody"), RejectReason.UNKNOWN_ACCOUNT),
        (dict(account_id="alice"), RejectReason.NOT_APPLICABLE),
        (dict(fee_rate=Fraction(1)), RejectReason.INVALID_PARAMETER),
        (dict(prices={}), RejectReason.MARGIN_CHECK_UNAVAILABLE),
        (dict(counterparty="alice"), RejectReason.INSUFFICIENT_BALANCE),  # holds no USDT enough
        (dict(counterparty="ghost"), RejectReason.UNKNOWN_ACCOUNT),
    ]
    for overrides, reason in cases:
        kwargs = {"account_id": "bob", "prices": prices, "fee_rate": FEE, **overrides}
        account = kwargs.pop("account_id")
        with pytest.raises(RejectError) as refused:
            liquidate_spot_margin(
                ledger, account, kwargs.pop("prices"), at(10, 5), seq=1, event_id="x", **kwargs
            )
        assert refused.value.reason is reason, overrides
        assert engine.state_hash() == before


@settings(max_examples=60, deadline=None)
@given(
    price=st.integers(5_000, 40_000),
    fee=st.sampled_from([Fraction(0), Fraction(1, 200), Fraction(1, 50)]),
    hours=st.integers(0, 30),
    insurance=st.sampled_from(["0", "100", "100000"]),
)
def test_liquidation_conserves_every_asset_and_restores_or_clears(
    price, fee, hours, insurance
) -> None:
    engine = leveraged_long(insurance=insurance)
    ledger = engine.component("ledger")
    totals = ledger.asset_totals()
    now = at(10 + hours, 5)
    prices = {"BTC": Fraction(price)}
    done = liquidate_spot_margin(ledger, "bob", prices, now, seq=99, event_id="liq", fee_rate=fee)
    assert ledger.asset_totals() == totals
    assert done.complete
    for name in ("bob", LIQUIDATION, INSURANCE, LENDING):
        assert all(b.free >= 0 for b in ledger.accounts[name].balances.values())
    if done.level_after is not None:
        assert done.level_after > Fraction(13, 10)
        assert not [o for o in done.outputs if isinstance(o, BadDebt)]
    # restore + replay gives the same state
    restored = type(engine).restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    run([], restored)


def test_candidates_and_prices_from_the_market() -> None:
    """The engine-side helpers: prices from the marks of the assets' price symbols, and the
    accounts at or below the liquidation level (1.1), worst first; unpriced ones apart."""
    from fengkong.liquidation.spot import asset_prices, liquidation_candidates

    engine = leveraged_long()
    ledger, market = engine.component("ledger"), engine.component("market")
    now = at(10, 5)
    prices = asset_prices(ledger, market, now)
    assert prices == {"BTC": Fraction(60_000), "USDT": Fraction(1)}
    assert liquidation_candidates(ledger, prices, now) == ([], [])
    low = {"BTC": Fraction(22_000), "USDT": Fraction(1)}
    below, unpriced = liquidation_candidates(ledger, low, now)
    assert [a for a, _ in below] == ["bob"] and unpriced == []
    assert asset_prices(ledger, market, at(12)) == {"USDT": Fraction(1)}  # BTC mark stale
    assert liquidation_candidates(ledger, {"USDT": Fraction(1)}, now) == ([], ["bob"])
