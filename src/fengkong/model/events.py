"""Input events and output events, as msgspec Structs tagged by ``type``.

Every input event carries ``seq`` (the sequencer's gap-free position in the log), ``id``
(globally unique; a re-delivered id is a no-op) and ``ts`` (event time, milliseconds since
the Unix epoch, UTC; the core reads no other clock). Numbers that become money are decimal
strings, converted exactly by :mod:`fengkong.model.fixed` against the asset or instrument
scale; an over-precise or non-finite text is rejected with the field named.

Event kinds are open for extension: a later component declares ``class X(Event, tag=True)``
and registers it with :func:`register_event`; nothing here changes. The JSON and msgpack
decoders are rebuilt from the registry, so every registered kind round-trips.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar, TypeVar, Union

import msgspec

from fengkong.model.enums import (
    InstrumentKind,
    InstrumentStatus,
    MarginMode,
    OptionKind,
    PositionMode,
    PositionSide,
    Side,
)


class Event(msgspec.Struct, tag_field="type", frozen=True, kw_only=True, gc=False):
    """Base of every input event.

    ``gc=False``: an event holds only scalars, strings and lists of such records, so it can
    never be part of a reference cycle; keeping millions of them out of the cyclic garbage
    collector's lists saves the collector's traversals on the hot path.
    """

    seq: int
    id: str
    ts: int


class Output(msgspec.Struct, tag_field="type", frozen=True, kw_only=True, gc=False):
    """Base of every output event; ``seq`` and ``id`` name the input that caused it."""

    seq: int
    id: str


E = TypeVar("E", bound=type)

_EVENT_TYPES: list[type[Event]] = []
_OUTPUT_TYPES: list[type[Output]] = []


class _Codec:
    """JSON / msgpack codecs over the registered kinds, rebuilt when a kind is added."""

    _cache: ClassVar[dict[str, Any]] = {}

    @classmethod
    def reset(cls) -> None:
        cls._cache.clear()

    @classmethod
    def get(cls, name: str, build):
        codec = cls._cache.get(name)
        if codec is None:
            codec = cls._cache[name] = build()
        return codec


def register_event(cls: E) -> E:
    """Add an input event kind to the union decoded from journals and JSON lines."""
    if cls not in _EVENT_TYPES:
        _EVENT_TYPES.append(cls)
        _Codec.reset()
    return cls


def register_output(cls: E) -> E:
    """Add an output event kind to the union decoded from output logs."""
    if cls not in _OUTPUT_TYPES:
        _OUTPUT_TYPES.append(cls)
        _Codec.reset()
    return cls


def event_types() -> tuple[type[Event], ...]:
    return tuple(_EVENT_TYPES)


def output_types() -> tuple[type[Output], ...]:
    return tuple(_OUTPUT_TYPES)


def _union(types: list[type]) -> Any:
    return Union[tuple(types)]  # noqa: UP007 - a runtime union over a dynamic registry


def json_event_decoder() -> msgspec.json.Decoder:
    return _Codec.get("json-in", lambda: msgspec.json.Decoder(_union(_EVENT_TYPES)))


def msgpack_event_decoder() -> msgspec.msgpack.Decoder:
    return _Codec.get("mp-in", lambda: msgspec.msgpack.Decoder(_union(_EVENT_TYPES)))


def json_output_decoder() -> msgspec.json.Decoder:
    return _Codec.get("json-out", lambda: msgspec.json.Decoder(_union(_OUTPUT_TYPES)))


# --- reference data -----------------------------------------------------------------------


@register_event
class AssetListed(Event, tag=True):
    """Declare an asset and its decimal scale (0..18)."""

    asset: str
    scale: int


@register_event
class InstrumentListed(Event, tag=True):
    """List an instrument. Sizes are decimal strings in the instrument's own units.

    ``tick_size`` fixes the price scale (its number of decimals), ``lot_size`` the quantity
    scale and ``multiplier`` the multiplier scale. ``min_notional`` is in the settlement asset.
    """

    symbol: str
    kind: InstrumentKind
    base: str
    quote: str
    settle: str
    tick_size: str
    lot_size: str
    min_qty: str
    max_qty: str
    min_notional: str = "0"
    multiplier: str = "1"
    status: InstrumentStatus = InstrumentStatus.TRADING
    expiry: int | None = None
    underlying: str | None = None
    option_kind: OptionKind | None = None
    strike: str | None = None


@register_event
class InstrumentParamsChanged(Event, tag=True):
    """Change trading parameters of a listed instrument; ``None`` keeps a field as it is.

    Tick and lot sizes may change only within the scales fixed at listing.
    """

    symbol: str
    tick_size: str | None = None
    lot_size: str | None = None
    min_qty: str | None = None
    max_qty: str | None = None
    min_notional: str | None = None
    status: InstrumentStatus | None = None


# --- accounts and funds -------------------------------------------------------------------


@register_event
class AccountOpened(Event, tag=True):
    account: str
    position_mode: PositionMode = PositionMode.ONE_WAY


@register_event
class SetPositionMode(Event, tag=True):
    """Switch one-way / hedge mode; refused while the account holds any position."""

    account: str
    mode: PositionMode


@register_event
class SetMarginMode(Event, tag=True):
    """Cross or isolated margin for one instrument; refused while a position is open there."""

    account: str
    symbol: str
    mode: MarginMode


@register_event
class Deposit(Event, tag=True):
    account: str
    asset: str
    amount: str


@register_event
class Withdrawal(Event, tag=True):
    account: str
    asset: str
    amount: str


@register_event
class Transfer(Event, tag=True):
    """Move free balance between two accounts."""

    from_account: str
    to_account: str
    asset: str
    amount: str


@register_event
class MarginTransfer(Event, tag=True):
    """Move funds between an account's cross wallet and one of its isolated positions.

    ``amount`` > 0 adds margin to the isolated position; < 0 takes margin back to the wallet.
    """

    account: str
    symbol: str
    amount: str
    position_side: PositionSide = PositionSide.BOTH


# --- trading and settlement ---------------------------------------------------------------


@register_event
class Fill(Event, tag=True):
    """One execution between a buyer and a seller, as reported by the matching engine.

    ``taker_side`` says which side removed liquidity; the maker pays ``maker_fee_rate`` and the
    taker ``taker_fee_rate`` (fractions of notional, e.g. ``"0.0004"``; a negative maker rate
    is a rebate and may not exceed the taker rate). Spot fees are charged in the quote asset;
    derivative fees in the settlement asset. In hedge mode the position sides say which leg
    each party opens or closes.

    ``buy_order_id`` / ``sell_order_id`` name the orders the fill executes, when they went
    through the pre-trade gate: the gate then releases the part of their reservation the fill
    consumes (the ledger's ``reservations`` hook). ``None`` (a fill of no gated order, and
    every log written before these fields existed) changes nothing.
    """

    symbol: str
    price: str
    qty: str
    buyer: str
    seller: str
    taker_side: Side
    maker_fee_rate: str = "0"
    taker_fee_rate: str = "0"
    buyer_position_side: PositionSide = PositionSide.BOTH
    seller_position_side: PositionSide = PositionSide.BOTH
    buy_order_id: str | None = None
    sell_order_id: str | None = None


@register_event
class FundingPayment(Event, tag=True):
    """Settle one funding interval of a perpetual: every open position pays or receives
    ``notional at mark_price × rate``; a positive rate means longs pay shorts."""

    symbol: str
    rate: str
    mark_price: str


@register_event
class Settlement(Event, tag=True):
    """Expire a dated future or option: every position is closed at ``price`` and the
    instrument becomes settled."""

    symbol: str
    price: str


# --- outputs ------------------------------------------------------------------------------


class RejectReason(enum.StrEnum):
    """Why the core refused an input event. The event changed nothing."""

    UNKNOWN_ACCOUNT = "unknown_account"
    UNKNOWN_ASSET = "unknown_asset"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    ALREADY_EXISTS = "already_exists"
    INVALID_NUMBER = "invalid_number"
    NON_POSITIVE_AMOUNT = "non_positive_amount"
    INVALID_PARAMETER = "invalid_parameter"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    INSUFFICIENT_ISOLATED_MARGIN = "insufficient_isolated_margin"
    INSTRUMENT_NOT_TRADING = "instrument_not_trading"
    PRICE_OFF_TICK = "price_off_tick"
    QTY_OFF_LOT = "qty_off_lot"
    SELF_TRADE = "self_trade"
    POSITION_SIDE_MISMATCH = "position_side_mismatch"
    CLOSE_EXCEEDS_POSITION = "close_exceeds_position"
    POSITION_OPEN = "position_open"
    NOT_APPLICABLE = "not_applicable"
    MARGIN_CHECK_UNAVAILABLE = "margin_check_unavailable"
    UNHANDLED_EVENT = "unhandled_event"


@register_output
class Rejected(Output, tag=True):
    event_type: str
    reason: RejectReason
    field: str
    value: str
    message: str


@register_output
class Duplicate(Output, tag=True):
    """The event id was processed before; this delivery changed nothing."""


@register_output
class BadDebt(Output, tag=True):
    """A forced charge (funding, settlement) exceeded what the account held.

    ``insurance`` units were drawn from the insurance fund; ``socialized`` units it could
    not cover are carried by the settlement account and reported here.
    """

    account: str
    asset: str
    shortfall: int
    insurance: int
    socialized: int


@register_output
class FundingSettled(Output, tag=True):
    """Summary of one funding settlement, in settlement-asset units."""

    symbol: str
    asset: str
    positions: int
    paid: int
    received: int
    dust: int


@register_output
class InstrumentSettled(Output, tag=True):
    """Summary of an expiry: positions closed and the net paid to users."""

    symbol: str
    asset: str
    positions: int
    paid_to_users: int
    charged_to_users: int
