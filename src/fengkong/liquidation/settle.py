"""Money mechanics of a liquidation: takeover, the clearing position's close, ADL.

Exact integers throughout (prices, quantities and amounts in the ledger's units); every
movement goes through :meth:`fengkong.ledger.ledger.Ledger.forced_trade`, which reuses the
Fill's position and PnL arithmetic, so per-asset totals (``Ledger.asset_totals``) never change.

1. :func:`takeover` (margin-mechanics.md §1.4, §4.1 step 4): the whole leg moves to
   ``sys:liquidation`` at the bankruptcy price; the account realizes its PnL there like a fill,
   pays the clearance fee ``|qty| × price × rate`` (``CHARGE``) to ``sys:insurance`` from what
   is left, and a loss it cannot pay is covered by the fund (reported ``BadDebt``), so no user
   balance goes negative. **Dust rule:** the bankruptcy price is rounded to the tick in the
   exchange's favour, so the account may keep less than one tick × size after PnL; the fee takes
   it first, and what remains after the fee stays with the account (it is the account's money).
2. :func:`close_clearing_position` (§1.4, §4.1, §7): the venue's fill of the liquidation order
   closes part of ``sys:liquidation``'s leg; a gain goes to the fund, a loss is drawn from it,
   and what the fund cannot cover is returned as the shortfall (carried by ``sys:settlement``
   and reported), the signal to deleverage the rest.
3. :func:`auto_deleverage` (§1.5, §7): opposite positions are closed in ranking order at the
   bankruptcy price against ``sys:liquidation``, without a trading fee.

``sys:liquidation`` runs in hedge mode (longs taken over into its LONG leg, shorts into SHORT),
so a takeover never nets against the other side; its realized cash is swept into the fund after
every operation, so it holds nothing between operations. Every function returns the fund's
history of that operation as :class:`FundRecord` entries (signed change of ``sys:insurance``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fengkong.engine.component import RejectError
from fengkong.ledger.ledger import Ledger
from fengkong.ledger.state import INSURANCE, LIQUIDATION
from fengkong.liquidation.events import FundReason
from fengkong.model.enums import PositionMode, PositionSide
from fengkong.model.events import BadDebt, Output, RejectReason

__all__ = [
    "AdlClose",
    "ClearingClose",
    "Deleveraging",
    "FundRecord",
    "Takeover",
    "auto_deleverage",
    "close_clearing_position",
    "takeover",
]

CLEARANCE_FEE = FundReason.CLEARANCE_FEE
BAD_DEBT = FundReason.BAD_DEBT
CLEARING_GAIN = FundReason.CLEARING_GAIN
CLEARING_LOSS = FundReason.CLEARING_LOSS


@dataclass(frozen=True, slots=True)
class FundRecord:
    """One change of the insurance fund: ``amount`` > 0 paid in, < 0 drawn."""

    reason: FundReason
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class Takeover:
    account: str
    symbol: str
    side: PositionSide
    qty: int  # signed contracts taken over (the account's position before)
    price: int
    pnl: int  # realized by the account at ``price``
    fee: int  # clearance fee charged
    shortfall: int  # loss the account could not pay
    insurance: int  # of which the fund covered
    socialized: int  # of which left with sys:settlement
    clearing_side: PositionSide  # the sys:liquidation leg now holding it
    history: tuple[FundRecord, ...]


@dataclass(frozen=True, slots=True)
class ClearingClose:
    symbol: str
    side: PositionSide  # the sys:liquidation leg closed
    qty: int  # contracts closed (> 0)
    price: int
    pnl: int  # realized by sys:liquidation
    shortfall: int  # loss the fund could not cover
    history: tuple[FundRecord, ...]


@dataclass(frozen=True, slots=True)
class AdlClose:
    """One deleveraged position: ``qty`` signed contracts removed from its leg."""

    account: str
    side: PositionSide
    qty: int
    price: int
    pnl: int


@dataclass(frozen=True, slots=True)
class Deleveraging:
    symbol: str
    closes: tuple[AdlClose, ...]
    remaining: int  # contracts of the request no ranked position could absorb
    history: tuple[FundRecord, ...]


def _clearing_account(ledger: Ledger) -> None:
    """Put ``sys:liquidation`` in hedge mode (only possible while it holds no position)."""
    account = ledger.accounts[LIQUIDATION]
    if account.position_mode is PositionMode.HEDGE:
        return
    if any(p.qty for p in account.positions.values()):
        raise RejectError(RejectReason.POSITION_OPEN, "account", LIQUIDATION, "one-way")
    account.position_mode = PositionMode.HEDGE


def _bad_debts(
    outputs: Iterable[Output], reason: FundReason
) -> tuple[list[FundRecord], int, int, int]:
    records, shortfall, insurance, socialized = [], 0, 0, 0
    for output in outputs:
        if isinstance(output, BadDebt):
            shortfall += output.shortfall
            insurance += output.insurance
            socialized += output.socialized
            if output.insurance:
                why = CLEARING_LOSS if output.account == LIQUIDATION else reason
                records.append(FundRecord(why, output.asset, -output.insurance))
    return records, shortfall, insurance, socialized


def _sweep(ledger: Ledger, settle: str) -> list[FundRecord]:
    """Move ``sys:liquidation``'s realized gains into the fund (its losses were already
    drawn from the fund by the forced charge)."""
    wallet = ledger.accounts[LIQUIDATION].balance(settle)
    gain = wallet.free
    if gain <= 0:
        return []
    wallet.free = 0
    ledger.accounts[INSURANCE].balance(settle).free += gain
    return [FundRecord(CLEARING_GAIN, settle, gain)]


def takeover(
    ledger: Ledger,
    account_id: str,
    symbol: str,
    side: PositionSide,
    price: int,
    clearance_rate: int,
    *,
    qty: int | None = None,
    seq: int = 0,
    event_id: str = "",
) -> Takeover:
    """Move the account's whole ``side`` leg of ``symbol`` to ``sys:liquidation`` at the
    bankruptcy ``price``; ``clearance_rate`` at :data:`~fengkong.ledger.contracts.RATE_SCALE`.
    ``qty`` (signed like the position, at most its size) takes over only that part: a partial
    liquidation, priced by the caller (at the mark)."""
    account = ledger.accounts.get(account_id)
    position = None if account is None else account.positions.get((symbol, side))
    if position is None or position.qty == 0:
        raise RejectError(RejectReason.INVALID_PARAMETER, "account", account_id, "no position")
    if qty is None:
        qty = position.qty
    elif qty == 0 or (qty > 0) != (position.qty > 0) or abs(qty) > abs(position.qty):
        raise RejectError(RejectReason.CLOSE_EXCEEDS_POSITION, "qty", qty, "within the position")
    _clearing_account(ledger)
    clearing_side = PositionSide.LONG if qty > 0 else PositionSide.SHORT
    pnl, fee, outputs = ledger.forced_trade(
        seq,
        event_id,
        symbol,
        account_id,
        side,
        -qty,
        price,
        clearance_rate,
        counterparty=LIQUIDATION,
        counterparty_side=clearing_side,
        counterparty_forced=True,
        fee_account=INSURANCE,
    )
    settle = ledger.instruments[symbol].settle
    history, shortfall, insurance, socialized = _bad_debts(outputs, BAD_DEBT)
    if fee:
        history.append(FundRecord(CLEARANCE_FEE, settle, fee))
    history += _sweep(ledger, settle)
    return Takeover(
        account_id, symbol, side, qty, price, pnl, fee, shortfall, insurance, socialized,
        clearing_side, tuple(history),
    )  # fmt: skip


def close_clearing_position(
    ledger: Ledger,
    symbol: str,
    side: PositionSide,
    price: int,
    qty: int,
    *,
    counterparty: str,
    counterparty_side: PositionSide = PositionSide.BOTH,
    seq: int = 0,
    event_id: str = "",
) -> ClearingClose:
    """The venue's fill of the liquidation order: ``qty`` (> 0) contracts of
    ``sys:liquidation``'s ``side`` leg closed at ``price`` against ``counterparty`` (refused,
    changing nothing, if the counterparty cannot pay its own loss, as a Fill would be)."""
    if side not in (PositionSide.LONG, PositionSide.SHORT) or qty <= 0:
        raise RejectError(RejectReason.INVALID_PARAMETER, "qty", qty, "a leg and qty > 0")
    _clearing_account(ledger)
    pnl, _fee, outputs = ledger.forced_trade(
        seq,
        event_id,
        symbol,
        LIQUIDATION,
        side,
        -qty if side is PositionSide.LONG else qty,
        price,
        0,
        counterparty=counterparty,
        counterparty_side=counterparty_side,
    )
    settle = ledger.instruments[symbol].settle
    history, _short, _ins, socialized = _bad_debts(outputs, CLEARING_LOSS)
    history += _sweep(ledger, settle)
    return ClearingClose(symbol, side, qty, price, pnl, socialized, tuple(history))


def auto_deleverage(
    ledger: Ledger,
    symbol: str,
    shortfall_side: PositionSide,
    bankruptcy_price: int,
    qty: int,
    ranking: Iterable[tuple[str, PositionSide]],
    *,
    seq: int = 0,
    event_id: str = "",
) -> Deleveraging:
    """Close ``qty`` (> 0) contracts of ``sys:liquidation``'s ``shortfall_side`` leg against
    the opposite positions named by ``ranking`` (deleveraging order, e.g. from
    :func:`fengkong.liquidation.adl.adl_queue`), each at ``bankruptcy_price``, no fee.
    Entries that are not opposite to the leg, or are flat, are skipped."""
    if shortfall_side not in (PositionSide.LONG, PositionSide.SHORT) or qty <= 0:
        raise RejectError(RejectReason.INVALID_PARAMETER, "qty", qty, "a leg and qty > 0")
    clearing = ledger.accounts[LIQUIDATION].positions.get((symbol, shortfall_side))
    if clearing is None or abs(clearing.qty) < qty:
        raise RejectError(RejectReason.CLOSE_EXCEEDS_POSITION, "qty", qty, LIQUIDATION)
    settle = ledger.instruments[symbol].settle
    clearing_long = shortfall_side is PositionSide.LONG
    closes: list[AdlClose] = []
    history: list[FundRecord] = []
    remaining = qty
    for account_id, side in ranking:
        if remaining == 0:
            break
        account = ledger.accounts.get(account_id)
        position = None if account is None else account.positions.get((symbol, side))
        if position is None or position.qty == 0 or (position.qty > 0) == clearing_long:
            continue
        size = min(abs(position.qty), remaining)
        signed = size if position.qty < 0 else -size
        pnl, _fee, outputs = ledger.forced_trade(
            seq,
            event_id,
            symbol,
            account_id,
            side,
            signed,
            bankruptcy_price,
            0,
            counterparty=LIQUIDATION,
            counterparty_side=shortfall_side,
            counterparty_forced=True,
        )
        debts, _s, _i, _so = _bad_debts(outputs, BAD_DEBT)
        history += debts
        closes.append(AdlClose(account_id, side, signed, bankruptcy_price, pnl))
        remaining -= size
    history += _sweep(ledger, settle)
    return Deleveraging(symbol, tuple(closes), remaining, tuple(history))
