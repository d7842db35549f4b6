"""Ledger state records: balances, positions, accounts, and the system accounts."""

from __future__ import annotations

import msgspec

from fengkong.model.enums import MarginMode, PositionMode, PositionSide

FEES = "sys:fees"
INSURANCE = "sys:insurance"
LIQUIDATION = "sys:liquidation"
SETTLEMENT = "sys:settlement"
SYSTEM_ACCOUNTS = (FEES, INSURANCE, LIQUIDATION, SETTLEMENT)
"""System accounts, created with every ledger.

``sys:fees`` collects trading fees and pays maker rebates. ``sys:insurance`` is the insurance
fund, drawn on for bad debt. ``sys:liquidation`` is the liquidation clearing account that
takes over bankrupt positions. ``sys:settlement`` is the clearing counterparty of every
realized PnL, funding and expiry cash flow: its balance is minus the net cash paid out on
positions so far (the users' realized gains are the open positions' unrealized losses), so it
may be negative; it is the only account whose balance may be.
"""
SYSTEM_PREFIX = "sys:"


class Balance:
    """Holdings of one asset: ``total == free + locked`` by construction.

    ``locked`` is reserved (open orders, pending withdrawals) and cannot be spent or withdrawn.

    :class:`Balance` and :class:`Position` are plain slotted classes, not msgspec Structs: a
    fill writes their fields about ten times, and CPython specializes a slot write (a
    Struct's goes through its generic ``__setattr__``, ~5 % of a fill). They are never
    encoded as such (the ledger's canonical state lists their fields).
    """

    __slots__ = ("free", "locked")

    def __init__(self, free: int = 0, locked: int = 0) -> None:
        self.free = free
        self.locked = locked

    @property
    def total(self) -> int:
        return self.free + self.locked

    def __eq__(self, other: object) -> bool:
        if type(other) is not Balance:
            return NotImplemented
        return self.free == other.free and self.locked == other.locked

    def __repr__(self) -> str:
        return f"Balance(free={self.free!r}, locked={self.locked!r})"


class Position:
    """A position in one instrument (one leg in hedge mode).

    ``qty`` is signed contracts (long > 0). ``entry_value`` is the signed value paid to open
    the current quantity, in the instrument's value units (see
    :class:`fengkong.ledger.contracts.ContractMath`): the average entry price is
    ``entry_value / qty`` (linear) or ``qty / entry_value`` (inverse). ``realized_pnl`` is
    cumulative since the position was opened, in settlement-asset units; ``isolated_margin``
    holds the margin of an isolated position.
    """

    __slots__ = (
        "entry_value",
        "isolated_margin",
        "margin_mode",
        "qty",
        "realized_pnl",
        "side",
        "symbol",
    )
    FIELDS = (
        "symbol",
        "side",
        "margin_mode",
        "qty",
        "entry_value",
        "realized_pnl",
        "isolated_margin",
    )

    def __init__(
        self,
        symbol: str,
        side: PositionSide,
        margin_mode: MarginMode,
        qty: int = 0,
        entry_value: int = 0,
        realized_pnl: int = 0,
        isolated_margin: int = 0,
    ) -> None:
        self.symbol = symbol
        self.side = side
        self.margin_mode = margin_mode
        self.qty = qty
        self.entry_value = entry_value
        self.realized_pnl = realized_pnl
        self.isolated_margin = isolated_margin

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in Position.FIELDS)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Position:
            return NotImplemented
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in Position.FIELDS)
        return f"Position({fields})"


class Account(msgspec.Struct, gc=False):
    id: str
    position_mode: PositionMode = PositionMode.ONE_WAY
    balances: dict[str, Balance] = msgspec.field(default_factory=dict)
    positions: dict[tuple[str, PositionSide], Position] = msgspec.field(default_factory=dict)
    margin_modes: dict[str, MarginMode] = msgspec.field(default_factory=dict)

    def balance(self, asset: str) -> Balance:
        found = self.balances.get(asset)
        if found is None:
            found = self.balances[asset] = Balance()
        return found
