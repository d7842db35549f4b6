"""Instruments: spot pairs, linear and inverse perpetuals and futures, European options.

Prices are integers at ``price_scale`` decimals, quantities integers at ``qty_scale``
decimals, and the contract multiplier an integer at ``multiplier_scale`` decimals. A
quantity always counts contracts; one contract is ``multiplier`` units of the base asset
for spot and linear instruments and ``multiplier`` units of the quote currency (USD) for
inverse instruments (BTCUSD inverse perpetual: 100 USD per contract).

Notional, in the instrument's settlement asset, per contract quantity ``q`` at price ``p``:

* linear and spot: ``q × multiplier × p`` (quote asset);
* inverse: ``q × multiplier / p`` (base asset, Binance COIN-M "notional in coin").
"""

from __future__ import annotations

import msgspec

from fengkong.model.enums import InstrumentKind, InstrumentStatus, OptionKind

LINEAR_KINDS = frozenset(
    {InstrumentKind.LINEAR_PERPETUAL, InstrumentKind.LINEAR_FUTURE, InstrumentKind.SPOT}
)
INVERSE_KINDS = frozenset({InstrumentKind.INVERSE_PERPETUAL, InstrumentKind.INVERSE_FUTURE})
DATED_KINDS = frozenset(
    {InstrumentKind.LINEAR_FUTURE, InstrumentKind.INVERSE_FUTURE, InstrumentKind.OPTION}
)
DERIVATIVE_KINDS = frozenset(InstrumentKind) - {InstrumentKind.SPOT}


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """A listed instrument with every number in integer units (see module docstring)."""

    symbol: str
    kind: InstrumentKind
    base: str
    quote: str
    settle: str
    price_scale: int
    qty_scale: int
    multiplier: int
    multiplier_scale: int
    tick_size: int
    lot_size: int
    min_qty: int
    max_qty: int
    min_notional: int
    status: InstrumentStatus
    expiry: int | None = None
    underlying: str | None = None
    option_kind: OptionKind | None = None
    strike: int | None = None

    @property
    def is_spot(self) -> bool:
        return self.kind is InstrumentKind.SPOT

    @property
    def is_inverse(self) -> bool:
        return self.kind in INVERSE_KINDS

    @property
    def is_option(self) -> bool:
        return self.kind is InstrumentKind.OPTION
