"""The exact re-check of liquidation candidates, in integers, on the ledger's own state.

Nothing is done to an account because of a float: every candidate of the screen
(:mod:`fengkong.liquidation.screen`) is re-checked here with the exact models of
:mod:`fengkong.margin` before the liquidation engine acts, and the same function is the
reference the screen is tested against.

Per account and settlement asset (cross), and per isolated position:

    equity = wallet + Σ UPNL      wallet = free + locked (cross) or the isolated margin;
                                  UPNL by ``fengkong.margin.contract.unrealized_pnl``
                                  (rounded down: a gain down, a loss up in size)
    MM     = Σ TierTable.maintenance_margin(notional)   notional rounded up, MM rounded up
    breach when equity <= MM      (margin ratio >= 100 %, margin-mechanics.md §1.2)

A notional beyond its table's last cap has no maintenance margin (``maintenance`` None): the
position is over its limit and is a breach (fail closed). Only linear and inverse perpetuals
and futures are margined here; system accounts are never candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fengkong.ledger.ledger import Ledger
from fengkong.ledger.state import SYSTEM_PREFIX
from fengkong.liquidation.instruments import SCREENED_KINDS, MissingMarkError
from fengkong.margin.contract import notional, unrealized_pnl
from fengkong.margin.tiers import TierTable
from fengkong.model.enums import MarginMode, PositionSide

__all__ = ["Breach", "account_breaches", "exact_candidates"]


@dataclass(frozen=True, slots=True)
class Breach:
    """A margin group at or below maintenance. ``symbol``/``side`` None: the account's cross
    group in ``asset``; otherwise that isolated position. Amounts in ``asset`` units."""

    account: str
    asset: str
    symbol: str | None
    side: PositionSide | None
    equity: int
    maintenance: int | None


def account_breaches(
    ledger: Ledger, account_id: str, tables: Mapping[str, TierTable], marks: Mapping[str, int]
) -> list[Breach]:
    """Every breached margin group of ``account_id`` at ``marks`` (integer price units)."""
    if account_id.startswith(SYSTEM_PREFIX):
        return []
    account = ledger.accounts[account_id]
    cross: dict[str, list[int | None]] = {}  # asset -> [equity, maintenance or None]
    breaches: list[Breach] = []
    for position in account.positions.values():
        instrument = ledger.instruments[position.symbol]
        if instrument.kind not in SCREENED_KINDS or position.qty == 0:
            continue
        mark = marks.get(position.symbol)
        if mark is None:
            raise MissingMarkError([position.symbol])
        math = ledger.contract_math(position.symbol)
        upnl = unrealized_pnl(math, position.qty, position.entry_value, mark)
        mm = tables[position.symbol].maintenance_margin(notional(math, position.qty, mark))
        asset = instrument.settle
        if position.margin_mode is MarginMode.ISOLATED:
            equity = position.isolated_margin + upnl
            if mm is None or equity <= mm:
                breaches.append(
                    Breach(account_id, asset, position.symbol, position.side, equity, mm)
                )
            continue
        group = cross.get(asset)
        if group is None:
            balance = account.balances.get(asset)
            group = cross[asset] = [0 if balance is None else balance.total, 0]
        group[0] += upnl
        group[1] = None if mm is None or group[1] is None else group[1] + mm
    cross_breaches = [
        Breach(account_id, asset, None, None, equity, maintenance)
        for asset, (equity, maintenance) in cross.items()
        if maintenance is None or equity <= maintenance
    ]
    return cross_breaches + breaches


def exact_candidates(
    ledger: Ledger,
    tables: Mapping[str, TierTable],
    marks: Mapping[str, int],
    account_ids: Iterable[str] | None = None,
) -> list[str]:
    """The accounts (of ``account_ids``, default every account) with at least one breach,
    in the order given (ledger order by default)."""
    ids = ledger.accounts if account_ids is None else account_ids
    return [a for a in ids if account_breaches(ledger, a, tables, marks)]
