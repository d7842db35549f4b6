"""Exact decisions of a staged liquidation, in the ledger's integer units.

A *margin group* is what one maintenance check covers: an account's cross positions settled
in one asset with its cross wallet in that asset, or one isolated position with its isolated
margin (the groups of :func:`fengkong.liquidation.exact.account_breaches`)::

    equity = wallet + Σ UPNL(mark)          MM = Σ TierTable.maintenance_margin(notional)

Stage 2, the step down (Bybit "laddered liquidation", margin-mechanics.md §4.1 step 3; OKX
"reduce by tiers", §4.2; BitMEX "bring the user down to a lower risk limit", §7):
:func:`step_down` looks, position by position (largest maintenance margin first), for the
smallest reduction that brings the position's notional at the mark down to a lower bracket's
cap *and* leaves the group above maintenance after the clearance fee::

    equity − fee(Δ) > MM − MM_p(q) + MM_p(q − Δ)      fee(Δ) = |Δ| × mark × rate (CHARGE)

Lowest-bracket positions are never stepped down (Bybit: "lowest-tier positions go straight to
takeover"); no plan means stage 3.

Stage 3, the takeover (§1.3, §1.4): each position of the group moves to the clearing account
at its bankruptcy price — the price at which the group's equity is zero with the group's other
positions at their marks::

    UPNL_p(BP) = UPNL_p(mark) − equity

searched on the tick grid with the ledger's own PnL arithmetic, so the account keeps at most
one tick of dust (rounded in the exchange's favour: a long's price up, a short's down, as
Bybit rounds bankruptcy prices, §4.1). The first position taken over absorbs the whole equity;
the others then go at their marks (equity zero). With a negative equity the price is better
than the mark and the fund, as the clearing account's owner, carries the gap.

The fund's limit (BitMEX §7: "the fund is spent to aggress in the market"):
:func:`affordable_limit` is the worst price at which the clearing account can close ``qty`` so
that the loss against the clearing position's entry stays within the fund's budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fengkong.ledger.contracts import RATE_SCALE, ContractMath
from fengkong.ledger.ledger import Ledger
from fengkong.liquidation.instruments import SCREENED_KINDS
from fengkong.margin.contract import notional, unrealized_pnl
from fengkong.margin.tiers import TierTable
from fengkong.model.enums import MarginMode, PositionSide

__all__ = [
    "GroupPosition",
    "MarginGroup",
    "StepDown",
    "affordable_limit",
    "bankruptcy_price",
    "margin_group",
    "step_down",
]

_RATE_ONE = 10**RATE_SCALE
_PRICE_CEILING = 1 << 62


@dataclass(frozen=True, slots=True)
class GroupPosition:
    """One leg of a margin group at its mark; ``bracket`` None beyond the table."""

    symbol: str
    side: PositionSide
    qty: int
    entry_value: int
    mark: int
    upnl: int
    notional: int
    maintenance: int | None
    bracket: int | None


@dataclass(frozen=True, slots=True)
class MarginGroup:
    """A margin group (module docstring); ``isolated`` names the position of an isolated one."""

    account: str
    asset: str
    isolated: tuple[str, PositionSide] | None
    wallet: int
    positions: tuple[GroupPosition, ...]

    @property
    def equity(self) -> int:
        return self.wallet + sum(p.upnl for p in self.positions)

    @property
    def maintenance(self) -> int | None:
        total = 0
        for p in self.positions:
            if p.maintenance is None:
                return None
            total += p.maintenance
        return total

    @property
    def breached(self) -> bool:
        maintenance = self.maintenance
        return bool(self.positions) and (maintenance is None or self.equity <= maintenance)


@dataclass(frozen=True, slots=True)
class StepDown:
    """Reduce ``position`` by ``qty`` (signed, opposite to it) to bracket ``to_bracket``."""

    position: GroupPosition
    qty: int
    to_bracket: int
    fee: int


def margin_group(
    ledger: Ledger,
    account_id: str,
    asset: str,
    isolated: tuple[str, PositionSide] | None,
    tables: Mapping[str, TierTable],
    marks: Mapping[str, int],
) -> MarginGroup:
    """The account's group in ``asset`` (cross) or its ``isolated`` position, at ``marks``;
    positions ordered by maintenance margin, largest first (then symbol and side)."""
    account = ledger.accounts[account_id]
    legs: list[GroupPosition] = []
    wallet = 0
    if isolated is None:
        balance = account.balances.get(asset)
        wallet = 0 if balance is None else balance.total
    for key, position in account.positions.items():
        instrument = ledger.instruments[position.symbol]
        if instrument.kind not in SCREENED_KINDS or position.qty == 0:
            continue
        if isolated is None:
            if position.margin_mode is MarginMode.ISOLATED or instrument.settle != asset:
                continue
        elif key != isolated:
            continue
        else:
            wallet = position.isolated_margin
        legs.append(_leg(ledger.contract_math(position.symbol), position, tables, marks))
    legs.sort(key=lambda p: (-(p.maintenance or 0), p.symbol, p.side.value))
    return MarginGroup(account_id, asset, isolated, wallet, tuple(legs))


def _leg(math: ContractMath, position, tables: Mapping[str, TierTable], marks) -> GroupPosition:
    mark = marks[position.symbol]
    table = tables[position.symbol]
    size = notional(math, position.qty, mark)
    return GroupPosition(
        position.symbol, position.side, position.qty, position.entry_value, mark,
        unrealized_pnl(math, position.qty, position.entry_value, mark), size,
        table.maintenance_margin(size), table.index_for(size),
    )  # fmt: skip


def _largest_within(math: ContractMath, lot: int, qty_abs: int, mark: int, cap: int) -> int:
    """The largest lot multiple ``q <= qty_abs`` whose notional at ``mark`` is <= ``cap``."""
    low, high = 0, qty_abs // lot
    while low < high:
        middle = (low + high + 1) // 2
        if notional(math, middle * lot, mark) <= cap:
            low = middle
        else:
            high = middle - 1
    return low * lot


def step_down(
    group: MarginGroup,
    ledger: Ledger,
    tables: Mapping[str, TierTable],
    clearance_rate: int,
) -> StepDown | None:
    """The smallest tier step-down that restores the group (module docstring), or None."""
    maintenance = group.maintenance
    if maintenance is None or group.equity <= 0:
        return None
    equity = group.equity
    for position in group.positions:
        if not position.bracket:
            continue
        math = ledger.contract_math(position.symbol)
        lot = ledger.instruments[position.symbol].lot_size
        table = tables[position.symbol]
        size = abs(position.qty)
        for target in range(position.bracket - 1, -1, -1):
            keep = _largest_within(math, lot, size, position.mark, table.tiers[target].cap)
            reduce = size - keep
            if reduce == 0:
                continue
            fee = math.charge(reduce, position.mark, clearance_rate)
            after = table.maintenance_margin(notional(math, keep, position.mark)) or 0
            if equity - fee > maintenance - (position.maintenance or 0) + after:
                signed = -reduce if position.qty > 0 else reduce
                return StepDown(position, signed, target, fee)
    return None


def _first_true(low: int, high: int, predicate) -> int:
    """The least ``x`` in ``[low, high]`` with ``predicate(x)`` (monotone false → true)."""
    while low < high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle + 1
    return low


def bankruptcy_price(math: ContractMath, tick: int, position: GroupPosition, equity: int) -> int:
    """The tick price at which closing ``position`` realizes ``UPNL(mark) − equity`` or a
    little better for the account (at most one tick; module docstring)."""
    target = position.upnl - equity
    qty, entry = position.qty, position.entry_value

    def enough(ticks: int) -> bool:  # UPNL is monotone in the price: up for a long
        return unrealized_pnl(math, qty, entry, ticks * tick) >= target

    top = max(position.mark // tick, 1)
    if qty > 0:
        while not enough(top) and top * tick < _PRICE_CEILING:
            top *= 2
        return _first_true(1, top, enough) * tick
    if enough(1):  # a short: the highest price still enough
        while enough(top) and top * tick < _PRICE_CEILING:
            top *= 2
        return (_first_true(1, top, lambda t: not enough(t)) - 1) * tick
    return tick  # not reachable at any price: the fund covers the rest as bad debt


def affordable_limit(math: ContractMath, tick: int, qty: int, entry_value: int, budget: int) -> int:
    """The worst tick price at which the clearing account can close its position (``qty``
    signed contracts of exact ``entry_value``) losing at most ``budget`` (>= 0): a sell limit
    (long position) rounded up, a buy limit rounded down. With ``budget`` 0 it is the
    break-even price on the tick, in the fund's favour."""

    def affordable(ticks: int) -> bool:
        return unrealized_pnl(math, qty, entry_value, ticks * tick) >= -budget

    top = 1
    while top * tick < _PRICE_CEILING and (affordable(top) if qty < 0 else not affordable(top)):
        top *= 2
    if qty > 0:
        return _first_true(1, top, affordable) * tick
    return max(_first_true(1, top, lambda t: not affordable(t)) - 1, 1) * tick
