"""Spot cross-margin liquidation at the ledger level: sell collateral, buy back and repay debt.

Called by the liquidation engine for an account whose margin level (margin-mechanics.md §3,
``assets / (liabilities + interest)``) is at or below the liquidation level (1.1 for Binance
cross 3x and 5x). Pure with respect to time and prices: the caller passes event time ``now``
and the prices of the assets (whole units of each asset in whole units of the valuation
asset, e.g. ``{"BTC": Fraction(60000)}``; the valuation asset is 1).

Procedure (:func:`liquidate_spot_margin`), every amount exact, in minor units:

1. **Interest first**: every loan of the account is charged the clock hours started by ``now``
   (:meth:`fengkong.ledger.loans.LoanBook.accrue`); repayments pay interest before principal.
2. While the level is not above ``target_level`` and debt remains, take the debt asset ``d``
   with the largest value (ties: asset code):

   * the account's own free ``d`` repays it first (no trade, no fee);
   * otherwise sell the free collateral ``c`` with the largest value (``c ≠ d``) for ``d`` in a
     forced trade at the given prices against ``counterparty`` (``sys:liquidation`` by default):
     the account gives ``s`` units of ``c`` and receives ``g = floor(s × p_c / p_d)`` units of
     ``d`` (``PAYOUT``), less the liquidation fee ``ceil(g × fee_rate)`` (``CHARGE``), which goes
     to ``fee_account`` (the insurance fund: §1.4, "fee on the amount liquidated"). ``s`` is
     the least that restores the level — selling value ``v`` moves the level to
     ``(A − v) / (D − v (1 − f))``, so ``v = (m D − A) / (m (1 − f) − 1)`` — capped by what
     repays ``d`` in full and by the free ``c``; rounded up to a unit.
3. When no free collateral is left and debt remains (and nothing is locked in open orders),
   the rest is bad debt: the insurance fund pays the pool what it can in that asset, and the
   remainder is written off as the pool's loss; both reported as one
   :class:`~fengkong.model.events.BadDebt` per asset.

Conservation: every unit moves between two accounts of one asset (account ↔ counterparty for
a trade, account → fee account, account → ``sys:lending`` for a repayment, insurance →
``sys:lending`` for covered bad debt), so ``Ledger.asset_totals()`` is unchanged. Locked
balances (open orders) are counted in the level but never sold: cancel the account's orders
first; :attr:`SpotLiquidation.complete` is False when the level could not be restored and
locked funds remain.

Validation comes first and nothing changes on a refusal (``RejectError``): unknown account,
no debt, a missing price (fail closed), a fee rate outside ``[0, 1)``, an unknown
counterparty or fee account, or a counterparty that could not pay for every trade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from fengkong.engine.component import RejectError
from fengkong.ledger.ledger import Ledger
from fengkong.ledger.loans import LENDING, LoanRefusal, LoanRepaid, SpotLiquidationTrade
from fengkong.ledger.state import INSURANCE, LIQUIDATION
from fengkong.model.events import BadDebt, Output, RejectReason
from fengkong.model.fixed import CHARGE, div_round

__all__ = [
    "SpotLiquidation",
    "SpotLiquidationTrade",
    "asset_prices",
    "liquidate_spot_margin",
    "liquidation_candidates",
    "margin_level",
]

_MAX_STEPS = 10_000


@dataclass(frozen=True, slots=True)
class SpotLiquidation:
    """What :func:`liquidate_spot_margin` did: the margin levels before and after (None: no
    debt), whether the level is restored or the debt gone (``complete``), the outputs in order
    (:class:`SpotLiquidationTrade`, :class:`~fengkong.ledger.loans.LoanRepaid`,
    :class:`~fengkong.model.events.BadDebt`) and the liquidation fees per asset."""

    account: str
    level_before: Fraction | None
    level_after: Fraction | None
    complete: bool
    outputs: list[Output]
    fees: dict[str, int]


def margin_level(
    ledger: Ledger, account_id: str, prices: Mapping[str, Fraction], now: int
) -> Fraction | None:
    """``Σ balances × price / Σ (principal + outstanding interest) × price`` of the account in
    the valuation asset at event time ``now`` (margin-mechanics.md §3); None without debt.
    ``prices``: whole units of the valuation asset per whole unit of each configured asset
    (the valuation asset needs none). Raises ``RejectError`` (``margin_check_unavailable``)
    when a held or owed asset has no price, ``unknown_account`` for an unknown account."""
    if account_id not in ledger.accounts:
        raise RejectError(RejectReason.UNKNOWN_ACCOUNT, "account", account_id, "")
    try:
        return ledger.loans.margin_level(account_id, now, prices)
    except LoanRefusal as refusal:
        raise RejectError(
            RejectReason.MARGIN_CHECK_UNAVAILABLE, refusal.field, refusal.value, refusal.message
        ) from None


def asset_prices(ledger: Ledger, market: Any, now: int) -> dict[str, Fraction]:
    """Whole-unit prices of the borrowable assets from the marks of their ``price_symbol``
    (``MarketComponent.mark_status`` at event time ``now``); the valuation asset is 1. An
    asset without a usable mark is left out, so a level that needs it fails closed."""
    prices: dict[str, Fraction] = {}
    for asset, terms in sorted(ledger.loans.terms.items()):
        if terms.price_symbol is None:
            prices[asset] = Fraction(1)
            continue
        mark, _why, _until = market.mark_status(terms.price_symbol, now)
        if mark is not None:
            scale = ledger.instruments[terms.price_symbol].price_scale
            prices[asset] = Fraction(mark, 10**scale)
    return prices


def liquidation_candidates(
    ledger: Ledger, prices: Mapping[str, Fraction], now: int
) -> tuple[list[tuple[str, Fraction]], list[str]]:
    """Indebted accounts at or below the liquidation level, worst first (ties: account id),
    with their levels; and the accounts whose level cannot be computed for want of a price
    (fail closed: the caller must not treat them as safe)."""
    settings = ledger.loans.settings
    if settings is None:
        return [], []
    below: list[tuple[str, Fraction]] = []
    unpriced: list[str] = []
    for account_id in sorted(ledger.loans.by_account):
        try:
            level = ledger.loans.margin_level(account_id, now, prices)
        except LoanRefusal:
            unpriced.append(account_id)
            continue
        if level is not None and level <= settings.thresholds.liquidation:
            below.append((account_id, level))
    below.sort(key=lambda item: (item[1], item[0]))
    return below, unpriced


def liquidate_spot_margin(
    ledger: Ledger,
    account_id: str,
    prices: Mapping[str, Fraction],
    now: int,
    *,
    seq: int,
    event_id: str,
    fee_rate: Fraction,
    target_level: Fraction | None = None,
    counterparty: str = LIQUIDATION,
    fee_account: str = INSURANCE,
) -> SpotLiquidation:
    """Liquidate a spot-margin account (module docstring) at ``prices`` and event time ``now``.

    ``target_level``: the level to restore (strictly above it), by default the configured
    margin-call level (1.3 for cross 3x). ``fee_rate``: the liquidation fee on the amount
    liquidated, charged in the bought asset. ``seq`` / ``event_id`` name the input event the
    outputs answer. Does not check that the account is below the liquidation level (the
    caller decides); an account already above the target is left as it is.
    """
    loans = ledger.loans
    accounts = ledger.accounts
    account = accounts.get(account_id)
    if account is None or account_id.startswith("sys:"):
        raise RejectError(RejectReason.UNKNOWN_ACCOUNT, "account", account_id, "")
    owed = sorted(loans.by_account.get(account_id, {}))
    if not owed or loans.settings is None:
        raise RejectError(RejectReason.NOT_APPLICABLE, "account", account_id, "owes nothing")
    if not 0 <= fee_rate < 1:
        raise RejectError(RejectReason.INVALID_PARAMETER, "fee_rate", fee_rate, "0 <= rate < 1")
    for field, name in (("counterparty", counterparty), ("fee_account", fee_account)):
        if name not in accounts:
            raise RejectError(RejectReason.UNKNOWN_ACCOUNT, field, name, "")
    if counterparty == account_id or fee_account == account_id:
        raise RejectError(RejectReason.SELF_TRADE, "counterparty", counterparty, "")
    target = loans.settings.thresholds.margin_call if target_level is None else target_level
    if target <= 1:
        raise RejectError(RejectReason.INVALID_PARAMETER, "target_level", target, "must be > 1")
    level_before = margin_level(ledger, account_id, prices, now)  # fails closed on prices

    # --- plan on copies (pure) ---
    unit: dict[str, Fraction] = {}
    for asset in sorted(set(account.balances) | set(owed)):
        if asset in loans.terms or asset == loans.settings.valuation:
            price = loans.unit_price(asset, now, prices)
            assert price is not None  # margin_level above would have refused
            unit[asset] = price
    free = {a: b.free for a, b in account.balances.items()}
    locked = sum(b.locked * unit.get(a, 0) for a, b in account.balances.items())
    debts = {a: list(loans.debt(account_id, a, now)) for a in owed}  # [principal, interest]
    moves: list[tuple] = []  # ("trade", c, sold, d, bought, fee) | ("repay", d, amount)
    fees: dict[str, int] = {}

    def value(asset: str, units: int) -> Fraction:
        return units * unit.get(asset, Fraction(0))

    def totals() -> tuple[Fraction, Fraction]:
        held = sum((value(a, u) for a, u in free.items() if u > 0), Fraction(0)) + locked
        debt = sum((value(a, p + i) for a, (p, i) in debts.items()), Fraction(0))
        return held, debt

    one_minus_fee = 1 - fee_rate
    stuck: set[str] = set()  # debt assets no free collateral can buy one more unit of
    exhausted: set[tuple[str, str]] = set()  # (collateral, debt) pairs down to dust
    restored = False
    for _step in range(_MAX_STEPS):
        assets_value, debt_value = totals()
        if debt_value == 0 or assets_value > target * debt_value:
            restored = True
            break
        open_debts = [a for a in debts if sum(debts[a]) and a not in stuck]
        if not open_debts:
            break
        d = max(open_debts, key=lambda a: (value(a, sum(debts[a])), a))
        owed_d = sum(debts[d])
        if free.get(d, 0) > 0:
            amount = min(free[d], owed_d)
            _pay(debts[d], amount)
            free[d] -= amount
            moves.append(("repay", d, amount))
            continue
        collateral = [
            a for a, u in free.items()
            if a != d and u > 0 and a in unit and unit[a] > 0 and (a, d) not in exhausted
        ]  # fmt: skip
        if not collateral:
            stuck.add(d)
            continue
        c = max(collateral, key=lambda a: (value(a, free[a]), a))
        p_c, p_d = unit[c], unit[d]
        # value to sell: what restores the level, at most what repays d in full, at most all c
        slope = target * one_minus_fee - 1
        wanted = (target * debt_value - assets_value) / slope if slope > 0 else value(c, free[c])
        wanted = min(wanted, owed_d * p_d / one_minus_fee)
        sell = max(_ceil(wanted / p_c), _ceil(p_d / p_c), 1)  # at least one unit of d
        sell = min(sell, free[c])
        bought = _floor(sell * p_c / p_d)
        if bought <= 0:
            exhausted.add((c, d))
            continue
        fee = div_round(bought * fee_rate.numerator, fee_rate.denominator, CHARGE)
        free[c] -= sell
        free[d] = free.get(d, 0) + bought - fee
        fees[d] = fees.get(d, 0) + fee
        moves.append(("trade", c, sell, d, bought, fee))
    # bad debt: the level is not restored, nothing is locked, and what is still owed in a
    # stuck asset cannot be bought with anything the account holds
    bad: list[tuple[str, int, int]] = []
    if not restored and locked == 0:
        for d in sorted(stuck):
            remaining = sum(debts[d])
            if remaining:
                fund = accounts[INSURANCE].balances.get(d)
                covered = min(remaining, max(fund.free, 0) if fund is not None else 0)
                bad.append((d, remaining, covered))
    # the counterparty must be able to deliver every trade, in order
    other = accounts[counterparty]
    running = {a: b.free for a, b in other.balances.items()}
    for move in moves:
        if move[0] == "trade":
            _kind, c, sell, d, bought, _fee = move
            running[c] = running.get(c, 0) + sell
            running[d] = running.get(d, 0) - bought
            if running[d] < 0:
                raise RejectError(
                    RejectReason.INSUFFICIENT_BALANCE, "counterparty", counterparty,
                    f"cannot deliver {bought} units of {d}",
                )  # fmt: skip

    # --- apply: nothing below may fail ---
    for asset in owed:
        loans.accrue(account_id, asset, now)
    outputs: list[Output] = []
    pool = accounts[LENDING]
    for move in moves:
        if move[0] == "trade":
            _kind, c, sell, d, bought, fee = move
            account.balances[c].free -= sell
            other.balance(c).free += sell
            other.balance(d).free -= bought
            account.balance(d).free += bought - fee
            if fee:
                accounts[fee_account].balance(d).free += fee
            outputs.append(
                SpotLiquidationTrade(
                    seq=seq, id=event_id, account=account_id, counterparty=counterparty,
                    sold_asset=c, sold=sell, bought_asset=d, bought=bought, fee=fee,
                )
            )  # fmt: skip
        else:
            _kind, d, amount = move
            interest, principal, closed = loans.repay(account_id, d, amount, now)
            outputs.append(
                LoanRepaid(seq=seq, id=event_id, account=account_id, asset=d,
                           interest=interest, principal=principal, closed=closed)
            )  # fmt: skip
    for d, remaining, covered in bad:
        if covered:
            accounts[INSURANCE].balances[d].free -= covered
            pool.balance(d).free += covered
        loans.write_off(account_id, d, now)
        outputs.append(
            BadDebt(seq=seq, id=event_id, account=account_id, asset=d, shortfall=remaining,
                    insurance=covered, socialized=remaining - covered)
        )  # fmt: skip
    level_after = loans.margin_level(account_id, now, prices)
    complete = level_after is None or level_after > target
    return SpotLiquidation(account_id, level_before, level_after, complete, outputs, fees)


def _pay(debt: list[int], amount: int) -> None:
    """Interest first, then principal (``debt`` = [principal, interest], in place)."""
    interest = min(amount, debt[1])
    debt[1] -= interest
    debt[0] -= amount - interest


def _ceil(x: Fraction) -> int:
    return -((-x.numerator) // x.denominator)


def _floor(x: Fraction) -> int:
    return x.numerator // x.denominator
