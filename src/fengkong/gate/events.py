"""Events of the pre-trade gate: order requests and their answers, admin settings.

Inputs: :class:`OrderRequest` (new, replace, cancel) from the order gateway; :class:`OrderDone`
(filled, cancelled, expired) from the matching engine; admin :class:`GateConfigured`,
:class:`GateInstrumentConfigured`, :class:`SetLeverage`, :class:`SetTradingState`.
(:class:`~fengkong.model.events.SetMarginMode` and
:class:`~fengkong.model.events.SetPositionMode` are the ledger's and are reused.)

Outputs: :class:`OrderAccepted` (with what was reserved) or :class:`OrderRejected` with one
:class:`OrderRejectReason`; a rejection changes no state.
"""

from __future__ import annotations

import enum

import msgspec

from fengkong.model.enums import OrderType, PositionSide, Side, TimeInForce
from fengkong.model.events import Event, Output, register_event, register_output

__all__ = [
    "DoneReason",
    "GateConfigured",
    "GateInstrumentConfigured",
    "OptionMarginConfigured",
    "OrderAccepted",
    "OrderAction",
    "OrderDone",
    "OrderRejectReason",
    "OrderRejected",
    "OrderRequest",
    "SetLeverage",
    "SetTradingState",
    "TierRow",
    "TradingScope",
    "TradingState",
]


class TradingState(enum.StrEnum):
    """Most permissive first; the effective state is the most restrictive of the three scopes."""

    ACTIVE = "active"
    REDUCE_ONLY = "reduce_only"
    CANCEL_ONLY = "cancel_only"
    HALTED = "halted"


class TradingScope(enum.StrEnum):
    PLATFORM = "platform"
    INSTRUMENT = "instrument"
    ACCOUNT = "account"


class OrderAction(enum.StrEnum):
    NEW = "new"
    REPLACE = "replace"
    CANCEL = "cancel"


class DoneReason(enum.StrEnum):
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class OrderRejectReason(enum.StrEnum):
    """Why the gate refused an order request, in the order the checks run. The request
    changed nothing."""

    PLATFORM_HALTED = "platform_halted"
    """The platform's trading state is HALTED: no request is taken, cancels included."""
    UNKNOWN_ACCOUNT = "unknown_account"
    """No such account in the ledger (fail closed)."""
    ACCOUNT_HALTED = "account_halted"
    """The account's trading state is HALTED."""
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    """No such instrument in the ledger (fail closed)."""
    INSTRUMENT_NOT_CONFIGURED = "instrument_not_configured"
    """Listed, but the gate has no risk parameters for it (fail closed)."""
    INSTRUMENT_HALTED = "instrument_halted"
    """The instrument's gate trading state is HALTED or its listing status is ``halted``."""
    INSTRUMENT_NOT_TRADING = "instrument_not_trading"
    """Listing status ``pre_listing`` or ``settled``."""
    INSTRUMENT_EXPIRED = "instrument_expired"
    """A dated instrument at or after its expiry."""
    CANCEL_ONLY = "cancel_only"
    """The effective trading state (field: the scope) accepts cancels only."""
    UNKNOWN_ORDER = "unknown_order"
    """Replace or cancel of an order the gate does not hold (or another account's)."""
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    """A new order reusing the id of an order still open."""
    INVALID_ORDER = "invalid_order"
    """Side, type or time in force invalid, or an inconsistent combination (a market order
    with a price, post-only market, a position side that does not fit the position mode)."""
    INVALID_NUMBER = "invalid_number"
    """Quantity or price not a positive decimal at the instrument's scale."""
    PRICE_OFF_TICK = "price_off_tick"
    """The limit price is not a multiple of the instrument's tick size."""
    QTY_OFF_LOT = "qty_off_lot"
    """The quantity is not a multiple of the lot size."""
    QTY_BELOW_MIN = "qty_below_min"
    """Below the instrument's minimum quantity."""
    QTY_ABOVE_MAX = "qty_above_max"
    """Above the instrument's maximum quantity."""
    MARK_MISSING = "mark_missing"
    """No mark price for the instrument (or a cross position's instrument): fail closed."""
    MARK_STALE = "mark_stale"
    """The market flagged the mark stale (its index below quorum at its last evaluation)."""
    INDEX_STALE = "index_stale"
    """By the request's time too few of the index's sources are fresh."""
    OPTION_MARK_MISSING = "option_mark_missing"
    """An option order (or a cross account's short option position) without a published
    option mark (``OptionMark``: underlying price and implied volatility): fail closed."""
    OPTION_MARK_STALE = "option_mark_stale"
    """The option's last published mark is older than its ``mark_max_age_ms``."""
    PRICE_OUTSIDE_BAND = "price_outside_band"
    """A limit price further from the mark than the instrument's price band."""
    NOTIONAL_BELOW_MIN = "notional_below_min"
    """Notional (at the limit price, or the market order's protection price) below the
    instrument's minimum."""
    NOTIONAL_ABOVE_MAX = "notional_above_max"
    """Notional above the gate's per-order maximum for the instrument."""
    REDUCE_ONLY_STATE = "reduce_only_state"
    """The effective trading state (field: the scope) is REDUCE_ONLY and the order does not
    only reduce a position."""
    REDUCE_ONLY_INCREASES = "reduce_only_increases"
    """A reduce-only order that would open or increase exposure (or a reduce-only spot
    order, which has no position to reduce)."""
    TOO_MANY_OPEN_ORDERS = "too_many_open_orders"
    """The account already has the platform's maximum number of open orders."""
    RATE_LIMITED = "rate_limited"
    """The account's token bucket (event time) is empty."""
    POSITION_LIMIT = "position_limit"
    """Position plus same-side open orders plus this order above the per-account limit."""
    OPEN_INTEREST_CAP = "open_interest_cap"
    """Open interest plus what this order could open above the instrument's cap."""
    NOTIONAL_BEYOND_TIERS = "notional_beyond_tiers"
    """The resulting notional is above the last bracket of the tier table."""
    LEVERAGE_EXCEEDS_TIER = "leverage_exceeds_tier"
    """The account's leverage is above the bracket maximum of the resulting notional."""
    SPOT_MARGIN_ACCOUNT = "spot_margin_account"
    """A derivative or option order from an account that owes spot-margin loans: loans and
    derivatives are kept in separate accounts (reduce-only orders pass)."""
    INSUFFICIENT_MARGIN = "insufficient_margin"
    """The order's margin is above the available margin (cross: wallet + UPNL − used;
    isolated: the position's margin + UPNL − used)."""
    INSUFFICIENT_BALANCE = "insufficient_balance"
    """Spot: the free balance does not cover what the order must lock (spot-margin: the free
    balance plus what the account may borrow)."""
    BORROW_UNAVAILABLE = "borrow_unavailable"
    """A spot-margin order that needs a loan the account cannot take: spot margin or the asset
    not configured for borrowing, or the account holds derivatives."""
    VALUATION_PRICE_MISSING = "valuation_price_missing"
    """A spot-margin order needing a loan while an asset of the account has no usable mark:
    the margin level cannot be computed (fail closed)."""


class TierRow(msgspec.Struct, frozen=True, kw_only=True):
    """One bracket as decimal strings (settlement asset; ``mmr`` a fraction); ``cum`` is
    derived when absent and must match the recurrence when given."""

    floor: str
    cap: str
    max_leverage: str
    mmr: str
    cum: str | None = None


@register_event
class GateConfigured(Event, tag=True):
    """Platform-wide limits: open orders per account; token bucket of ``rate_capacity``
    requests refilled at ``rate_per_second`` (event time)."""

    max_open_orders: int = 200
    rate_capacity: int = 50
    rate_per_second: int = 10


@register_event
class GateInstrumentConfigured(Event, tag=True):
    """Risk parameters of one listed instrument (replaces earlier ones for new requests).

    Fractions as decimal strings: ``price_band`` (a limit price at most this far from the
    mark), ``market_slippage`` (the worst price a market order is margined at),
    ``fee_reserve`` (spot buys lock notional × (1 + fee_reserve)). ``max_notional`` in the
    settlement asset; ``position_limit`` and ``open_interest_cap`` in contracts; ``None`` for
    no limit. Derivatives need ``tiers``; spot has none.
    """

    symbol: str
    tiers: list[TierRow] = msgspec.field(default_factory=list)
    default_leverage: int = 20
    price_band: str = "0.05"
    market_slippage: str = "0.05"
    fee_reserve: str = "0.001"
    max_notional: str | None = None
    position_limit: str | None = None
    open_interest_cap: str | None = None


@register_event
class OrderRequest(Event, tag=True):
    """A new order, a replacement (new ``qty`` / ``price`` for ``order_id``), or a cancel."""

    action: OrderAction
    order_id: str
    account: str
    symbol: str
    side: Side = Side.BUY
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    qty: str = "0"
    price: str | None = None
    reduce_only: bool = False
    position_side: PositionSide = PositionSide.BOTH
    margin: bool = False
    """Spot only: a spot-margin order (Binance ``MARGIN_BUY``): what the free balance lacks is
    borrowed when the order is accepted; what is left of that loan is repaid (auto-repay)
    when the order is done."""


@register_event
class OptionMarginConfigured(Event, tag=True):
    """Standard-margin model of a gated option (without one: Deribit's constants).

    ``model``: ``"deribit"`` or ``"okx"``; ``margin_factor`` OKX's MarginFactor;
    ``min_open_margin`` the least a sell-to-open order reserves per one underlying (OKX
    MinOpenOrderMargin, in the settlement asset's terms per coin); ``mark_max_age_ms`` how
    old a published option mark may be before orders are refused (fail closed).
    """

    symbol: str
    model: str = "deribit"
    margin_factor: str = "1"
    min_open_margin: str = "0"
    mark_max_age_ms: int = 60_000


@register_event
class OrderDone(Event, tag=True):
    """The matching engine finished an order: its remaining reservation is released."""

    order_id: str
    reason: DoneReason


@register_event
class SetLeverage(Event, tag=True):
    account: str
    symbol: str
    leverage: int


@register_event
class SetTradingState(Event, tag=True):
    """``target`` is the symbol or account id (empty for the platform)."""

    scope: TradingScope
    state: TradingState
    target: str = ""


@register_output
class OrderAccepted(Output, tag=True):
    """``reserved`` units of ``asset`` held for the order (margin for derivatives, kept by the
    gate; a ledger lock for spot)."""

    order_id: str
    action: OrderAction
    asset: str
    reserved: int


@register_output
class OrderRejected(Output, tag=True):
    order_id: str
    action: OrderAction
    reason: OrderRejectReason
    field: str
    value: str
    message: str
