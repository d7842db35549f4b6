"""Liquidation money mechanics: takeover, the clearing position's close, ADL.

Hand-worked numbers from ../shared/specs/margin-mechanics.md (sections cited per test);
every operation keeps ``Ledger.asset_totals()`` exactly and leaves no user balance negative.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.engine.component import RejectError
from fengkong.ledger.ledger import Ledger
from fengkong.ledger.state import INSURANCE, LIQUIDATION, SETTLEMENT, SYSTEM_PREFIX
from fengkong.liquidation.settle import (
    AdlClose,
    FundRecord,
    auto_deleverage,
    close_clearing_position,
    takeover,
)
from fengkong.model.enums import PositionSide
from fengkong.model.events import Deposit, MarginTransfer
from tests.factories import exchange, run

BOTH, LONG, SHORT = PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT
USDT = 10**8
ETH = "ETHUSDT-260327"  # tick 0.01 (price units = cents), lot 0.01 (qty units = 0.01)
HALF_PERCENT = 500_000  # 0.5 % at RATE_SCALE 8: §1.4 "0.5% on all other perpetuals"


def _ledger(log) -> Ledger:
    engine, _ = run(log.events)
    return engine.component("ledger")


def _bitmex_book(fund: str | None = None) -> Ledger:
    """§7 [P] linear cross example: wallet 10,000 USDT, buy 20 ETH at 1,000 → bankruptcy 500,
    liquidation 510. Shorts: b 10, c 10; a market maker ``mm`` fills liquidation orders."""
    log = exchange(
        ETH,
        accounts={
            "a": {"USDT": "10000"},
            "b": {"USDT": "50000"},
            "c": {"USDT": "50000"},
            "mm": {"USDT": "1000000"},
        },
    )
    log.fill(ETH, "1000", "10", buyer="a", seller="b")
    log.fill(ETH, "1000", "10", buyer="a", seller="c")
    if fund is not None:
        log.make(Deposit, account=INSURANCE, asset="USDT", amount=fund)
    return _ledger(log)


def _free(ledger: Ledger, account: str) -> int:
    balance = ledger.accounts[account].balances.get("USDT")
    return 0 if balance is None else balance.free


def _check_sound(ledger: Ledger, totals: dict[str, int]) -> None:
    assert ledger.asset_totals() == totals
    for account in ledger.accounts.values():
        if account.id == SETTLEMENT:
            continue
        for balance in account.balances.values():
            assert balance.free >= 0 and balance.locked >= 0, account.id
        for position in account.positions.values():
            assert position.isolated_margin >= 0, account.id
        if account.id.startswith(SYSTEM_PREFIX) and account.id != LIQUIDATION:
            assert not account.positions


def test_takeover_at_bankruptcy_price_leaves_exactly_zero_and_waives_the_fee():
    """§7 [P]: closing the 20 ETH long at the bankruptcy price 500 realizes −10,000 and leaves
    0; the clearance fee (§1.4) finds nothing left, so the fund neither gains nor pays."""
    ledger = _bitmex_book()
    totals = ledger.asset_totals()
    result = takeover(ledger, "a", ETH, BOTH, 500_00, HALF_PERCENT)
    assert (result.qty, result.pnl, result.fee, result.shortfall) == (20_00, -10_000 * USDT, 0, 0)
    assert result.history == ()
    assert (
        _free(ledger, "a") == 0 and ("ETHUSDT-260327", BOTH) not in ledger.accounts["a"].positions
    )
    clearing = ledger.accounts[LIQUIDATION].positions[(ETH, LONG)]
    assert (clearing.qty, clearing.entry_value) == (20_00, 20_00 * 500_00)
    assert result.clearing_side is LONG
    _check_sound(ledger, totals)


def test_takeover_at_liquidation_price_charges_the_clearance_fee_to_the_fund():
    """§7 [P] liquidation price 510: −9,800 realized leaves the 200 maintenance margin; the
    fee 20 × 510 × 0.5 % = 51 USDT (§1.4 ``qty × price × rate``) goes to the fund, 149 stays."""
    ledger = _bitmex_book()
    totals = ledger.asset_totals()
    result = takeover(ledger, "a", ETH, BOTH, 510_00, HALF_PERCENT)
    assert result.pnl == -9_800 * USDT and result.fee == 51 * USDT
    assert _free(ledger, "a") == 149 * USDT
    assert _free(ledger, INSURANCE) == 51 * USDT
    assert result.history == (FundRecord("clearance_fee", "USDT", 51 * USDT),)
    _check_sound(ledger, totals)


def test_takeover_past_bankruptcy_is_covered_by_the_fund_then_socialized():
    """A gap to 490 (below bankruptcy 500): −10,200 against a 10,000 wallet leaves 200 of bad
    debt (§1.4 "a negative wallet is reset to 0 by the fund"): the fund's 150 covers part, the
    other 50 stays with sys:settlement and is reported; no fee is charged."""
    ledger = _bitmex_book(fund="150")
    totals = ledger.asset_totals()
    result = takeover(ledger, "a", ETH, BOTH, 490_00, HALF_PERCENT)
    assert (result.shortfall, result.insurance, result.socialized, result.fee) == (
        200 * USDT,
        150 * USDT,
        50 * USDT,
        0,
    )
    assert result.history == (FundRecord("bad_debt", "USDT", -150 * USDT),)
    assert _free(ledger, "a") == 0 and _free(ledger, INSURANCE) == 0
    _check_sound(ledger, totals)


def test_isolated_takeover_is_bounded_by_the_isolated_margin():
    """An isolated long loses at most its isolated margin; the cross wallet is untouched."""
    log = exchange(ETH, accounts={"a": {"USDT": "3000"}, "b": {"USDT": "50000"}})
    log.isolated("a", ETH)
    log.fill(ETH, "1000", "20", buyer="a", seller="b")
    log.make(MarginTransfer, account="a", symbol=ETH, position_side=BOTH, amount="2000")
    ledger = _ledger(log)
    totals = ledger.asset_totals()
    # 20 × (1000 − 890) = 2,200 loss against 2,000 isolated margin, empty fund: 200 socialized
    result = takeover(ledger, "a", ETH, BOTH, 890_00, HALF_PERCENT)
    assert result.shortfall == 200 * USDT and result.socialized == 200 * USDT
    assert _free(ledger, "a") == 1000 * USDT  # the 1,000 left in the cross wallet
    _check_sound(ledger, totals)


def test_venue_fill_above_the_takeover_price_pays_the_fund():
    """Bybit §4.1, BitMEX §7: a fill better than bankruptcy goes to the insurance fund."""
    ledger = _bitmex_book()
    totals = ledger.asset_totals()
    takeover(ledger, "a", ETH, BOTH, 500_00, HALF_PERCENT)
    close = close_clearing_position(ledger, ETH, LONG, 505_00, 20_00, counterparty="mm")
    assert close.pnl == 100 * USDT and close.shortfall == 0
    assert close.history == (FundRecord("clearing_gain", "USDT", 100 * USDT),)
    assert _free(ledger, INSURANCE) == 100 * USDT and _free(ledger, LIQUIDATION) == 0
    assert not ledger.accounts[LIQUIDATION].positions
    _check_sound(ledger, totals)


def test_venue_fill_below_draws_the_fund_and_reports_the_shortfall():
    """A fill worse than bankruptcy is covered by the fund, then by ADL (§4.1): 20 sold at 480
    lose 400; a fund of 250 pays 250, the 150 left is the shortfall."""
    ledger = _bitmex_book(fund="250")
    totals = ledger.asset_totals()
    takeover(ledger, "a", ETH, BOTH, 500_00, HALF_PERCENT)
    close = close_clearing_position(ledger, ETH, LONG, 480_00, 20_00, counterparty="mm")
    assert close.pnl == -400 * USDT and close.shortfall == 150 * USDT
    assert close.history == (FundRecord("clearing_loss", "USDT", -250 * USDT),)
    assert _free(ledger, INSURANCE) == 0
    _check_sound(ledger, totals)


def test_refused_venue_fill_changes_nothing():
    ledger = _bitmex_book()
    takeover(ledger, "a", ETH, BOTH, 500_00, HALF_PERCENT)
    before = ledger.canonical_state()
    with pytest.raises(RejectError):
        close_clearing_position(ledger, ETH, LONG, 500_00, 21_00, counterparty="mm")
    with pytest.raises(RejectError):
        close_clearing_position(ledger, ETH, LONG, 0, 1_00, counterparty="mm")
    assert ledger.canonical_state() == before


def test_adl_closes_opposite_positions_in_ranking_order_at_the_bankruptcy_price():
    """§1.5: counterparties are closed at the bankruptcy price of the liquidated order, no
    fee, highest rank first. Venue sells 5 at 480 with an empty fund (loss 100, shortfall);
    the other 15 are deleveraged: c (ranked first) loses its whole 10 short, b 5 of its 10.
    Each short opened at 1,000 and closes at 500: +500 per contract."""
    ledger = _bitmex_book()
    totals = ledger.asset_totals()
    takeover(ledger, "a", ETH, BOTH, 500_00, HALF_PERCENT)
    close = close_clearing_position(ledger, ETH, LONG, 480_00, 5_00, counterparty="mm")
    assert close.shortfall == 100 * USDT
    b_before, c_before = _free(ledger, "b"), _free(ledger, "c")
    adl = auto_deleverage(
        ledger, ETH, LONG, 500_00, 15_00, [("mm", BOTH), ("c", BOTH), ("b", BOTH)]
    )
    assert adl.closes == (
        AdlClose("c", BOTH, 10_00, 500_00, 5_000 * USDT),
        AdlClose("b", BOTH, 5_00, 500_00, 2_500 * USDT),
    )  # mm is long (same side as the clearing leg): skipped
    assert adl.remaining == 0 and adl.history == ()
    assert _free(ledger, "c") - c_before == 5_000 * USDT
    assert _free(ledger, "b") - b_before == 2_500 * USDT
    assert ledger.accounts["b"].positions[(ETH, BOTH)].qty == -5_00
    assert not ledger.accounts[LIQUIDATION].positions
    _check_sound(ledger, totals)


def test_adl_refuses_more_than_the_clearing_leg_holds():
    ledger = _bitmex_book()
    takeover(ledger, "a", ETH, BOTH, 500_00, HALF_PERCENT)
    with pytest.raises(RejectError):
        auto_deleverage(ledger, ETH, LONG, 500_00, 21_00, [("b", BOTH)])


def test_inverse_takeover_and_close_conserve_exactly():
    """COIN-M (§2): PnL in BTC at 12 extra decimals, rounded by CREDIT; conservation exact."""
    sym = "BTCUSD-PERP"
    log = exchange(sym, accounts={"a": {"BTC": "0.01"}, "b": {"BTC": "10"}, "mm": {"BTC": "10"}})
    log.fill(sym, "60000", "30", buyer="b", seller="a")  # a short 30 × 100 USD
    ledger = _ledger(log)
    totals = ledger.asset_totals()
    result = takeover(ledger, "a", sym, BOTH, 61_234_5, HALF_PERCENT)
    assert result.clearing_side is SHORT
    _check_sound(ledger, totals)
    close_clearing_position(ledger, sym, SHORT, 61_300_0, 30, counterparty="mm")
    _check_sound(ledger, totals)


# --- property: takeover → venue fill → ADL keeps conservation exactly --------------------


@st.composite
def _scenario(draw):
    symbol = draw(st.sampled_from(["BTCUSDT-PERP", "BTCUSD-PERP"]))
    inverse = symbol == "BTCUSD-PERP"
    n = draw(st.integers(2, 5))
    fills = draw(
        st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.integers(0, n - 1),
                st.integers(40_000, 80_000),
                st.integers(1, 50),
            ),
            min_size=1,
            max_size=12,
        )
    )
    wallets = draw(st.lists(st.integers(1, 3_000), min_size=n, max_size=n))
    return symbol, inverse, n, fills, wallets, draw(st.data())


@settings(max_examples=250, deadline=None)
@given(_scenario())
def test_property_takeover_venue_fill_adl_conserve_exactly(scenario):
    symbol, inverse, _n, fills, wallets, data = scenario
    asset = "BTC" if inverse else "USDT"
    accounts = {
        f"u{i}": {asset: str(w if not inverse else w / 1000)} for i, w in enumerate(wallets)
    }
    accounts["mm"] = {asset: "100000000"}
    log = exchange(symbol, accounts=accounts)
    fund = data.draw(st.integers(0, 500))
    if fund:
        log.make(Deposit, account=INSURANCE, asset=asset, amount=str(fund))
    for buyer, seller, price, qty in fills:
        if buyer != seller:
            qty_text = str(qty) if inverse else f"0.{qty:03d}"
            log.fill(symbol, str(price), qty_text, buyer=f"u{buyer}", seller=f"u{seller}")
    engine, _ = run(log.events)  # refused fills (insufficient funds) change nothing
    ledger: Ledger = engine.component("ledger")
    holders = [(a, s) for (a, s), p in ledger.holders(symbol).items() if p.qty]
    if not holders:
        return
    totals = ledger.asset_totals()
    victim, side = data.draw(st.sampled_from(holders))
    price = data.draw(st.integers(20_000, 120_000)) * 10  # whole dollars on the 0.1 tick
    result = takeover(ledger, victim, symbol, side, price, HALF_PERCENT)
    _check_sound(ledger, totals)
    fund_now = ledger.accounts[INSURANCE].balance(asset).free
    assert sum(r.amount for r in result.history) == fund_now - fund * 10**8
    held = abs(result.qty)
    sold = data.draw(st.integers(1, held))
    venue = data.draw(st.integers(20_000, 120_000)) * 10
    close = close_clearing_position(
        ledger, symbol, result.clearing_side, venue, sold, counterparty="mm"
    )
    _check_sound(ledger, totals)
    after = ledger.accounts[INSURANCE].balance(asset).free
    assert sum(r.amount for r in close.history) == after - fund_now
    rest = held - sold
    if close.shortfall and rest:
        opposite = [
            (a, s)
            for (a, s), p in ledger.holders(symbol).items()
            if p.qty and (p.qty > 0) != (result.clearing_side is LONG) and a != LIQUIDATION
        ]
        ranking = data.draw(st.permutations(opposite))
        adl = auto_deleverage(ledger, symbol, result.clearing_side, price, rest, ranking)
        _check_sound(ledger, totals)
        absorbed = [c.account for c in adl.closes]
        assert absorbed == [a for a, _ in ranking if a in absorbed]  # ranking order kept
        assert sum(abs(c.qty) for c in adl.closes) + adl.remaining == rest
