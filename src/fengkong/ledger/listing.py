"""Turn ``InstrumentListed`` / ``InstrumentParamsChanged`` into validated :class:`Instrument`s.

Scales are fixed at listing: the price scale is the number of decimals of ``tick_size``, the
quantity scale that of ``lot_size`` and the multiplier scale that of ``multiplier`` (trailing
zeros are not significant). Later changes must fit those scales.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from fengkong.engine.component import RejectError
from fengkong.model.assets import Asset
from fengkong.model.enums import InstrumentKind, InstrumentStatus, OptionKind
from fengkong.model.events import InstrumentListed, InstrumentParamsChanged, RejectReason
from fengkong.model.fixed import FixedPointError, parse_units
from fengkong.model.instruments import DATED_KINDS, INVERSE_KINDS, Instrument

MAX_DECIMALS = 18


def decimals_of(text: str, field: str) -> int:
    """Number of significant decimals of a positive decimal text (its natural scale)."""
    units = parse_number(text, MAX_DECIMALS, field, minimum=1)
    scale = MAX_DECIMALS
    while scale > 0 and units % 10 == 0:
        units //= 10
        scale -= 1
    return scale


def parse_number(text: str, scale: int, field: str, minimum: int | None = None) -> int:
    """:func:`parse_units` raising the ledger's typed rejection."""
    try:
        units = parse_units(text, scale, field=field)
    except FixedPointError as err:
        raise RejectError(RejectReason.INVALID_NUMBER, field, text, err.reason) from None
    if minimum is not None and units < minimum:
        reason = RejectReason.NON_POSITIVE_AMOUNT if minimum == 1 else RejectReason.INVALID_NUMBER
        raise RejectError(reason, field, text, "must be positive" if minimum == 1 else "negative")
    return units


def _invalid(field: str, value: object, message: str) -> RejectError:
    return RejectError(RejectReason.INVALID_PARAMETER, field, value, message)


def instrument_from_listing(event: InstrumentListed, assets: Mapping[str, Asset]) -> Instrument:
    """Validate a listing against the known assets and build the instrument."""
    for field in ("base", "quote", "settle"):
        code = getattr(event, field)
        if code not in assets:
            raise RejectError(RejectReason.UNKNOWN_ASSET, field, code, "asset not listed")
    kind = InstrumentKind(event.kind)
    status = InstrumentStatus(event.status)
    option_kind = None if event.option_kind is None else OptionKind(event.option_kind)
    if kind in INVERSE_KINDS:
        if event.settle != event.base:
            raise _invalid("settle", event.settle, "an inverse contract settles in its base")
    elif kind is InstrumentKind.OPTION:
        if event.settle not in (event.base, event.quote):
            raise _invalid("settle", event.settle, "an option settles in its base or quote")
    elif event.settle != event.quote:
        raise _invalid("settle", event.settle, "spot and linear instruments settle in quote")
    price_scale = decimals_of(event.tick_size, "tick_size")
    qty_scale = decimals_of(event.lot_size, "lot_size")
    multiplier_scale = decimals_of(event.multiplier, "multiplier")
    multiplier = parse_number(event.multiplier, multiplier_scale, "multiplier", minimum=1)
    if kind is InstrumentKind.SPOT and qty_scale + multiplier_scale > assets[event.base].scale:
        raise _invalid(
            "lot_size", event.lot_size, f"finer than {event.base} scale {assets[event.base].scale}"
        )
    if kind in DATED_KINDS:
        if event.expiry is None:
            raise _invalid("expiry", None, f"required for {kind.value}")
    elif event.expiry is not None:
        raise _invalid("expiry", event.expiry, f"not allowed for {kind.value}")
    strike = None
    if kind is InstrumentKind.OPTION:
        if option_kind is None or event.strike is None:
            raise _invalid("option_kind", option_kind, "an option needs kind and strike")
        strike = parse_number(event.strike, price_scale, "strike", minimum=1)
    elif option_kind is not None or event.strike is not None:
        raise _invalid("strike", event.strike, "only options have a strike")
    if status is InstrumentStatus.SETTLED:
        raise _invalid("status", status.value, "cannot list a settled instrument")
    instrument = Instrument(
        symbol=event.symbol,
        kind=kind,
        base=event.base,
        quote=event.quote,
        settle=event.settle,
        price_scale=price_scale,
        qty_scale=qty_scale,
        multiplier=multiplier,
        multiplier_scale=multiplier_scale,
        tick_size=parse_number(event.tick_size, price_scale, "tick_size", minimum=1),
        lot_size=parse_number(event.lot_size, qty_scale, "lot_size", minimum=1),
        min_qty=parse_number(event.min_qty, qty_scale, "min_qty", minimum=1),
        max_qty=parse_number(event.max_qty, qty_scale, "max_qty", minimum=1),
        min_notional=parse_number(
            event.min_notional, assets[event.settle].scale, "min_notional", minimum=0
        ),
        status=status,
        expiry=event.expiry,
        underlying=event.underlying if event.underlying is not None else event.base,
        option_kind=option_kind,
        strike=strike,
    )
    check_sizes(instrument)
    return instrument


def instrument_with_changes(
    current: Instrument, event: InstrumentParamsChanged, settle_scale: int
) -> Instrument:
    """Apply a parameter change within the scales fixed at listing."""
    if current.status is InstrumentStatus.SETTLED:
        raise RejectError(
            RejectReason.INSTRUMENT_NOT_TRADING, "symbol", current.symbol, "instrument is settled"
        )
    changes: dict[str, object] = {}
    for field, scale, minimum in (
        ("tick_size", current.price_scale, 1),
        ("lot_size", current.qty_scale, 1),
        ("min_qty", current.qty_scale, 1),
        ("max_qty", current.qty_scale, 1),
        ("min_notional", settle_scale, 0),
    ):
        text = getattr(event, field)
        if text is not None:
            changes[field] = parse_number(text, scale, field, minimum=minimum)
    if event.status is not None:
        status = InstrumentStatus(event.status)
        if status is InstrumentStatus.SETTLED:
            raise _invalid("status", status.value, "only a Settlement event settles")
        changes["status"] = status
    updated = _replace(current, changes)
    check_sizes(updated)
    return updated


def _replace(instrument: Instrument, changes: dict[str, object]) -> Instrument:
    return msgspec.structs.replace(instrument, **changes)


def check_sizes(instrument: Instrument) -> None:
    """Lot and tick consistency: min/max quantities are lot multiples, min <= max."""
    lot = instrument.lot_size
    for field in ("min_qty", "max_qty"):
        value = getattr(instrument, field)
        if value % lot:
            raise _invalid(field, value, f"not a multiple of lot_size {lot}")
    if instrument.min_qty > instrument.max_qty:
        raise _invalid("min_qty", instrument.min_qty, f"above max_qty {instrument.max_qty}")
    if instrument.strike is not None and instrument.strike % instrument.tick_size:
        raise _invalid("strike", instrument.strike, "not a multiple of tick_size")
