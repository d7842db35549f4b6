"""The pre-trade gate: every order request decided before it reaches the book, fail closed.

Checks run cheapest first and stop at the first failure (docs/gate.md has the table):

1. trading state: platform HALTED; account known and not HALTED; instrument listed, configured
   for the gate, not HALTED, trading and not expired; CANCEL_ONLY at any scope;
2. the request's shape: side, type, time in force and position side; quantity and price
   numbers, tick and lot multiples, min / max quantity;
3. the mark: present, not flagged stale, its index still fresh at the request's time; a limit
   price within the band around the mark, a market order margined at the mark moved by the
   maximum slippage; min / max notional;
4. reduce-only (flag or REDUCE_ONLY state) cannot increase exposure;
5. open-order count, the account's token bucket (event time), position limit and open-interest
   cap, leverage within the bracket maximum of the resulting notional;
6. margin: derivative order margin (initial margin at the order's price + open loss against the
   mark) within available margin; spot: the free balance covers what the order locks.

A refusal is an :class:`~fengkong.gate.events.OrderRejected` output and changes nothing.

Reservations. Derivative order margin is gate state: per account and settlement asset the sum
of its open cross orders' margin, per isolated position that of its orders; available margin
is, as Binance computes it, ``wallet + UPNL − positions' IM − orders' margin`` (cross) or
``isolated margin + UPNL − IM − orders' margin`` (isolated). Spot orders lock the ledger
balance (``Ledger.lock``) — quote ``notional × (1 + fee_reserve)`` for a buy, base for a sell —
and unlock what is left on cancel or expiry. A fill naming an order consumes ``reserved ×
filled / remaining`` (rounded down; the last fill takes the rest): for spot orders the ledger
moves exactly that from locked to free just before it applies the fill (its ``reservations``
hook); the gate, observing the accepted fill, reduces the order by the same amount.

Fast path. A new cross derivative order is decided from its account's context on the
instrument (``_Context``: mark, band, cross aggregate, leverage bracket, listing limits),
resolved once and kept until the next event the gate does not own (the ledger and the market
change only through those; a fill drops only its two accounts' contexts, as it moves no
mark); it reads the gate's own books and buckets live. A request it cannot plainly accept
goes to the general path (``_decide``), which runs every check in the order above and names
the first that fails; tests/gate/test_fast_path.py holds the two paths, the reference with
nothing cached, to the same outputs and state on random logs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import msgspec

from fengkong.engine.component import RejectError
from fengkong.gate.events import (
    DoneReason,
    GateConfigured,
    GateInstrumentConfigured,
    OptionMarginConfigured,
    OrderAccepted,
    OrderAction,
    OrderDone,
    OrderRejected,
    OrderRejectReason,
    OrderRequest,
    SetLeverage,
    SetTradingState,
    TradingScope,
    TradingState,
)
from fengkong.gate.rules import InstrumentRules, resolve_rules
from fengkong.ledger.contracts import RATE_SCALE
from fengkong.ledger.loans import LoanRefusal, LoanRejectReason, LoanRepaid
from fengkong.liquidation.events import LiquidationFill, LiquidationOrderDone
from fengkong.margin.contract import initial_margin, notional, open_loss, unrealized_pnl
from fengkong.margin.options import (
    YEAR_MS,
    black76_value,
    deribit_short_option_margin,
    okx_short_option_margin,
    otm_amount,
)
from fengkong.market.component import OBSERVED_SCALE
from fengkong.market.events import (
    BookTop,
    FundingDue,
    IndexConfigured,
    MarkConfigured,
    OptionMark,
    SourcePrice,
)
from fengkong.model.enums import (
    InstrumentStatus,
    MarginMode,
    OptionKind,
    OrderType,
    PositionMode,
    PositionSide,
    TimeInForce,
)
from fengkong.model.events import Fill, Output, RejectReason, Settlement, event_types
from fengkong.model.fixed import FixedPointError, format_units, parse_units

__all__ = ["Gate"]

R = OrderRejectReason
_ONE = 10**RATE_SCALE
_MILLI = 1000  # token bucket counts thousandths of a request
_FOREVER = 1 << 62
_SIGN = {"buy": 1, "sell": -1}
_LIMIT, _MARKET = OrderType.LIMIT, OrderType.MARKET
_TIFS = frozenset(TimeInForce)
_MARKET_TIFS = frozenset({TimeInForce.IOC, TimeInForce.FOK})
_POST_ONLY = TimeInForce.POST_ONLY
_BOTH, _LONG, _SHORT = PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT
_CROSS = MarginMode.CROSS
_HEDGE = PositionMode.HEDGE
_TRADING, _HALTED_LISTING = InstrumentStatus.TRADING, InstrumentStatus.HALTED
_NEW, _CANCEL, _REPLACE = OrderAction.NEW, OrderAction.CANCEL, OrderAction.REPLACE
_ACTIVE = TradingState.ACTIVE
_REDUCE_ONLY = TradingState.REDUCE_ONLY
_CANCEL_ONLY = TradingState.CANCEL_ONLY
_HALTED = TradingState.HALTED
_RANK = {state: i for i, state in enumerate(TradingState)}
_DONE_REASONS = frozenset(DoneReason)
_NO_CACHE: dict[str, Any] = {}  # an empty mapping for two-level lookups; never written
_MARK_REASONS = {"missing": R.MARK_MISSING, "stale": R.MARK_STALE, "index_stale": R.INDEX_STALE}


class Refusal(Exception):
    """Raised inside a decision; becomes an :class:`OrderRejected` output."""

    __slots__ = ("field", "message", "reason", "value")

    def __init__(self, reason: OrderRejectReason, field: str, value: object, message: str = ""):
        super().__init__(reason.value)
        self.reason = reason
        self.field = field
        self.value = value
        self.message = message


class GateOrder(msgspec.Struct, gc=False):
    """An open order as the gate holds it: ``qty`` signed remaining contracts; ``reserved``
    units of ``asset`` (gate-held margin for derivatives, a ledger lock for spot)."""

    order_id: str
    account: str
    symbol: str
    position_side: PositionSide
    qty: int
    price: int
    reduce_only: bool
    spot: bool
    isolated: bool
    asset: str
    reserved: int


class _Book:
    """Derived per-account aggregates of its open orders (rebuilt on restore)."""

    __slots__ = ("count", "margin", "open_qty")

    def __init__(self) -> None:
        self.count = 0
        self.margin: dict[Any, int] = {}  # asset (cross) or (symbol, side) (isolated) -> units
        self.open_qty: dict[tuple[str, PositionSide, int], int] = {}  # (sym, leg, sign) -> qty


class _Context:
    """One account's new derivative orders on one instrument, resolved once and kept while
    only order requests and completions arrive (they change only the gate's own orders,
    books and buckets, read live): every check that depends on nothing else is passed
    once here, so that the per-order path reads integers instead of walking the ledger, the
    market, the rules and the tier table, and builds no key.

    ``until``: the last event time at which the mark, its index, the cross aggregate and the
    listing stay usable; ``low`` / ``high``: the price band around the mark; ``worst_cap``:
    the largest worst-case notional whose bracket allows the account's leverage, with every
    bracket below it; ``shapes``: (side, type, time in force, position side) -> ``(sign,
    market price or None, position qty, book key)``, filled as requests arrive."""

    __slots__ = (
        "account", "capacity", "den", "hedge", "high", "leverage", "linear", "lot", "low",
        "mark", "math", "max_notional", "max_open", "max_qty", "min_notional", "min_qty", "num",
        "oi_cap", "position_limit", "prices", "qtys", "refill", "settle", "shapes", "slippage",
        "surplus", "tick", "until", "worst_cap",
    )  # fmt: skip

    def __init__(self, until: float) -> None:
        self.until = until


_GENERAL = _Context(float("-inf"))
"""The context of a pair the fast path does not take (spot, option, isolated, not ACTIVE,
unknown, no usable mark or aggregate at resolution): no event time is within its
``until``."""


def release_share(order: GateOrder, filled: int) -> int:
    """Units of the reservation a fill of ``filled`` contracts consumes: ``reserved × filled /
    remaining`` rounded down, everything on the last fill."""
    remaining = order.qty if order.qty > 0 else -order.qty
    if filled >= remaining:
        return order.reserved
    return order.reserved * filled // remaining


class Gate:
    """Engine component owning order requests, order completion and the gate's settings."""

    name = "gate"

    def __init__(self, ledger: Any, market: Any) -> None:
        self.ledger = ledger
        self.market = market
        ledger.reservations = self._reservations
        ledger.loans.price_of = self._loan_price
        self._debtors = ledger.loans.by_account  # the ledger restores before the gate re-inits
        self.settings = GateConfigured(seq=0, id="default", ts=0)
        self.rules: dict[str, InstrumentRules] = {}
        self.states: dict[tuple[str, str], TradingState] = {}
        self.platform_state = _ACTIVE
        self.leverage: dict[str, dict[str, int]] = {}  # symbol -> account -> leverage
        self.orders: dict[str, GateOrder] = {}
        self.buckets: dict[str, tuple[int, int]] = {}  # account -> (milli-tokens, last ts)
        self._books: dict[str, _Book] = {}
        self._epoch = 0
        self._contexts: dict[tuple[str, str], _Context] = {}
        """Derived: (account, symbol) -> its new-order context, dropped by every event the gate
        does not own (``_drop_contexts``); a fill drops only its two accounts' (``_forget``)."""
        self._context_symbols: dict[str, list[str]] = {}
        """Derived: account -> the symbols of its contexts (for ``_forget``)."""
        self._dependents: dict[str, set[str]] = {}
        """Derived: symbol -> the accounts whose context or cross aggregate read its mark (a
        price event of the symbol forgets them: ``_marks_moved``)."""
        self._surplus: dict[str, dict[str, tuple[int, int, int]]] = {}  # asset -> account
        self.borrowed: dict[str, tuple[str, int]] = {}
        """Spot-margin orders' loans: order id -> (asset, units borrowed at acceptance)."""
        self.option_configs: dict[str, OptionMarginConfigured] = {}
        self._option_marks: dict[str, tuple[tuple[int, int, int], Fraction, Fraction]] = {}
        """Derived: symbol -> (published mark, option mark per underlying in the settlement
        asset, underlying price); a pure function of the published mark."""

    # --- engine component protocol --------------------------------------------------------

    def handlers(self) -> dict[type, Any]:
        return {
            OrderRequest: self._on_request,
            OrderDone: self._on_done,
            GateConfigured: self._on_configured,
            GateInstrumentConfigured: self._on_instrument_configured,
            SetLeverage: self._on_set_leverage,
            SetTradingState: self._on_set_trading_state,
            OptionMarginConfigured: self._on_option_configured,
        }

    def observers(self) -> dict[type, Any]:
        """Every kind the gate does not own drops the new-order contexts: whatever the ledger
        or the market change (a balance, a listing's parameters, a margin or position mode)
        changes only through such an event. Those that can move a mark or a position also
        drop the cross aggregates: a fill only what was derived from its two accounts
        (:meth:`_forget`), a quote, a book top or a funding settlement only what read the
        marks it moves (:meth:`_marks_moved`; the liquidation engine, which takes positions
        over inside those events, reports the accounts it changes:
        :meth:`positions_changed`), the others everything (a new epoch)."""
        owned = self.handlers()
        observed = {kind: self._drop_contexts for kind in event_types() if kind not in owned}
        bump = self._bump
        moved = self._on_symbol_price
        observed.update({
            Fill: self._on_fill, SourcePrice: self._on_quote, BookTop: moved, FundingDue: moved,
            Settlement: bump, IndexConfigured: bump, MarkConfigured: bump, OptionMark: bump,
            LiquidationFill: bump, LiquidationOrderDone: bump,  # clearing legs; ADL closes
        })  # fmt: skip
        return observed

    def canonical_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "settings": [self.settings.max_open_orders, self.settings.rate_capacity,
                         self.settings.rate_per_second],
            "platform": self.platform_state.value,
            "states": sorted([sc, target, s.value] for (sc, target), s in self.states.items()),
            "instruments": [self.rules[s].config for s in sorted(self.rules)],
            "leverage": sorted([a, s, x] for s, by in self.leverage.items() for a, x in by.items()),
            "orders": [self.orders[o] for o in sorted(self.orders)],
            "buckets": sorted([a, t, ts] for a, (t, ts) in self.buckets.items()),
        }  # fmt: skip
        # keys present only once used, so that logs without them keep their state hash
        if self.borrowed:
            state["borrowed"] = sorted([o, a, str(x)] for o, (a, x) in self.borrowed.items())
        if self.option_configs:
            state["option_margins"] = [self.option_configs[s] for s in sorted(self.option_configs)]
        return state

    def restore_state(self, data: dict[str, Any]) -> None:
        self.__init__(self.ledger, self.market)
        max_open, capacity, per_second = data["settings"]
        self.settings = GateConfigured(
            seq=0, id="restored", ts=0, max_open_orders=max_open, rate_capacity=capacity,
            rate_per_second=per_second,
        )  # fmt: skip
        self.platform_state = TradingState(data["platform"])
        self.states = {(scope, target): TradingState(s) for scope, target, s in data["states"]}
        for raw in data["instruments"]:
            self._install(msgspec.convert(raw, GateInstrumentConfigured))
        for a, s, x in data["leverage"]:
            self.leverage.setdefault(s, {})[a] = x
        for raw in data["orders"]:
            order = msgspec.convert(raw, GateOrder)
            self.orders[order.order_id] = order
            self._add_to_book(order)
        self.buckets = {a: (t, ts) for a, t, ts in data["buckets"]}
        self.borrowed = {o: (a, int(x)) for o, a, x in data.get("borrowed", [])}
        for raw in data.get("option_margins", []):
            config = msgspec.convert(raw, OptionMarginConfigured)
            self.option_configs[config.symbol] = config

    # --- queries ---------------------------------------------------------------------------

    def _money(self, units: int, rules: InstrumentRules) -> str:
        """Settlement-asset units as a decimal text, for refusal messages."""
        return f"{format_units(units, self.ledger.assets[rules.settle].scale)} {rules.settle}"

    def available_margin(self, account_id: str, asset: str, now: int) -> int:
        """Cross available margin: ``wallet + UPNL − positions' IM − open orders' margin``."""
        account = self.ledger.accounts[account_id]
        balance = account.balances.get(asset)
        wallet = balance.free if balance is not None else 0
        book = self._books.get(account_id)
        used = book.margin.get(asset, 0) if book is not None else 0
        return wallet + self._cross_surplus(account, asset, now) - used

    def _loan_price(self, asset: str, now: int) -> Fraction | None:
        """The ledger's loan-valuation hook: one whole ``asset`` in the valuation asset, the
        mark of its ``price_symbol`` at event time ``now``; None when missing or stale."""
        terms = self.ledger.loans.terms.get(asset)
        if terms is None or terms.price_symbol is None:
            return None
        mark, _why, _until = self.market.mark_status(terms.price_symbol, now)
        if mark is None:
            return None
        return Fraction(mark, 10 ** self.ledger.instruments[terms.price_symbol].price_scale)

    def open_interest(self, symbol: str) -> int:
        """Long contracts open in ``symbol`` (kept by the ledger)."""
        return self.ledger.open_interest.get(symbol, 0)

    # --- order requests --------------------------------------------------------------------

    def _decide(self, event: OrderRequest) -> list[Output]:
        """Any request, on the general path: every check in order, the first failing one
        named in the refusal."""
        try:
            action = event.action
            if action == _NEW:
                return self._new(event, None)
            if action == _CANCEL:
                return self._cancel(event)
            if action == _REPLACE:
                order = self.orders.get(event.order_id)
                if order is None or order.account != event.account or order.symbol != event.symbol:
                    raise Refusal(R.UNKNOWN_ORDER, "order_id", event.order_id)
                return self._new(event, order)
            raise Refusal(R.INVALID_ORDER, "action", event.action)
        except Refusal as refusal:
            return [
                OrderRejected(
                    seq=event.seq, id=event.id, order_id=event.order_id, action=event.action,
                    reason=refusal.reason, field=refusal.field, value=str(refusal.value),
                    message=refusal.message,
                )
            ]  # fmt: skip

    def _state_of(self, account_id: str, symbol: str) -> tuple[TradingState, str]:
        """The most restrictive trading state of platform, instrument and account."""
        state, scope = self.platform_state, "platform"
        states = self.states
        if states:
            for key in (("instrument", symbol), ("account", account_id)):
                found = states.get(key)
                if found is not None and _RANK[found] > _RANK[state]:
                    state, scope = found, key[0]
        return state, scope

    def _gatekeeping(self, event: OrderRequest) -> tuple[Any, InstrumentRules, Any, TradingState,
                                                         str]:  # fmt: skip
        """Trading state, account and instrument (steps 1 of the module docstring)."""
        if self.platform_state is _HALTED:
            raise Refusal(R.PLATFORM_HALTED, "platform", "halted")
        account = self.ledger.accounts.get(event.account)
        if account is None:
            raise Refusal(R.UNKNOWN_ACCOUNT, "account", event.account)
        if self.states:
            state, scope = self._state_of(event.account, event.symbol)
        else:
            state, scope = self.platform_state, "platform"
        if state is _HALTED and scope == "account":
            raise Refusal(R.ACCOUNT_HALTED, "account", event.account)
        instrument = self.ledger.instruments.get(event.symbol)
        if instrument is None:
            raise Refusal(R.UNKNOWN_INSTRUMENT, "symbol", event.symbol)
        rules = self.rules.get(event.symbol)
        if rules is None:
            raise Refusal(R.INSTRUMENT_NOT_CONFIGURED, "symbol", event.symbol)
        if state is _HALTED or instrument.status is _HALTED_LISTING:
            raise Refusal(R.INSTRUMENT_HALTED, "symbol", event.symbol)
        if instrument.status is not _TRADING:
            raise Refusal(R.INSTRUMENT_NOT_TRADING, "symbol", event.symbol, instrument.status)
        if instrument.expiry is not None and event.ts >= instrument.expiry:
            raise Refusal(R.INSTRUMENT_EXPIRED, "symbol", event.symbol, instrument.expiry)
        return account, rules, instrument, state, scope

    def _cancel(self, event: OrderRequest) -> list[Output]:
        self._gatekeeping(event)
        order = self.orders.get(event.order_id)
        if order is None or order.account != event.account or order.symbol != event.symbol:
            raise Refusal(R.UNKNOWN_ORDER, "order_id", event.order_id)
        return [
            OrderAccepted(seq=event.seq, id=event.id, order_id=event.order_id,
                          action=event.action, asset=order.asset, reserved=0)
        ]  # fmt: skip

    def _new(self, event: OrderRequest, replacing: GateOrder | None) -> list[Output]:
        account, rules, instrument, state, scope = self._gatekeeping(event)
        if state is _CANCEL_ONLY:
            raise Refusal(R.CANCEL_ONLY, scope, event.symbol)
        if replacing is None and event.order_id in self.orders:
            raise Refusal(R.DUPLICATE_ORDER_ID, "order_id", event.order_id)
        # --- shape ---
        sign = _SIGN.get(event.side)
        if sign is None:
            raise Refusal(R.INVALID_ORDER, "side", event.side)
        kind = event.order_type
        tif = event.time_in_force
        if tif not in _TIFS:
            raise Refusal(R.INVALID_ORDER, "time_in_force", tif)
        if kind == _LIMIT:
            if event.price is None:
                raise Refusal(R.INVALID_ORDER, "price", None, "a limit order needs a price")
        elif kind == _MARKET:
            if event.price is not None:
                raise Refusal(R.INVALID_ORDER, "price", event.price, "a market order has none")
            if tif not in _MARKET_TIFS:
                raise Refusal(R.INVALID_ORDER, "time_in_force", tif, "market orders: ioc, fok")
        else:
            raise Refusal(R.INVALID_ORDER, "order_type", kind)
        if event.margin and not rules.spot:
            raise Refusal(R.INVALID_ORDER, "margin", True, "spot-margin orders are spot only")
        leg = event.position_side
        hedge = account.position_mode is _HEDGE and not rules.spot
        if (leg == _BOTH) == hedge or leg not in (_BOTH, _LONG, _SHORT):
            raise Refusal(R.INVALID_ORDER, "position_side", leg, "does not fit the position mode")
        math = rules.math
        qty = math.parsed_qtys.get(event.qty)
        if qty is None:
            qty = math.remember_qty(event.qty, _number(event.qty, math.qty_scale, "qty"))
        if qty % instrument.lot_size:
            raise Refusal(R.QTY_OFF_LOT, "qty", event.qty)
        if qty < instrument.min_qty:
            raise Refusal(R.QTY_BELOW_MIN, "qty", event.qty)
        if qty > instrument.max_qty:
            raise Refusal(R.QTY_ABOVE_MAX, "qty", event.qty)
        price = 0
        if event.price is not None:
            price = math.parsed_prices.get(event.price)
            if price is None:
                price = math.remember_price(
                    event.price, _number(event.price, math.price_scale, "price")
                )
            if price % instrument.tick_size:
                raise Refusal(R.PRICE_OFF_TICK, "price", event.price)
        # --- mark, band, notional ---
        if rules.option:  # the option's own mark, from its published IV (fail closed)
            mark = self._option_mark_units(event.symbol, instrument, event.ts)
        else:
            mark, why, _until = self.market.mark_status(event.symbol, event.ts)
            if mark is None:
                raise Refusal(_MARK_REASONS[why], "symbol", event.symbol)
        if kind == _LIMIT:
            gap = price - mark if price > mark else mark - price
            if gap * _ONE > rules.band * mark:
                raise Refusal(
                    R.PRICE_OUTSIDE_BAND, "price", event.price,
                    f"mark {format_units(mark, math.price_scale)}",
                )  # fmt: skip
        else:
            price = _market_price(mark, sign, rules.slippage, instrument.tick_size)
        # notional at the order's price, rounded up (= math.charge(qty, price, _ONE): rate 1)
        if rules.linear:
            size = -((-qty * price * rules.notional_num) // rules.notional_den)
        else:
            size = math.charge(qty, price, _ONE)
        if size < instrument.min_notional:
            raise Refusal(
                R.NOTIONAL_BELOW_MIN, "qty", event.qty, f"notional {self._money(size, rules)}"
            )
        if rules.max_notional is not None and size > rules.max_notional:
            raise Refusal(
                R.NOTIONAL_ABOVE_MAX, "qty", event.qty, f"notional {self._money(size, rules)}"
            )
        # --- reduce-only, counts, rate ---
        signed = sign * qty
        book = self._books.get(event.account)
        if rules.spot:
            if event.reduce_only:
                raise Refusal(R.REDUCE_ONLY_INCREASES, "reduce_only", True, "spot has no position")
            if state is _REDUCE_ONLY:
                raise Refusal(R.REDUCE_ONLY_STATE, scope, event.symbol)
            position_qty = 0
        else:
            position = account.positions.get((event.symbol, leg))
            position_qty = position.qty if position is not None else 0
            reduces = position_qty * signed < 0 and qty <= abs(position_qty)
            if event.reduce_only and not reduces:
                raise Refusal(
                    R.REDUCE_ONLY_INCREASES,
                    "reduce_only",
                    True,
                    f"position {format_units(position_qty, math.qty_scale)}",
                )
            if state is _REDUCE_ONLY and not reduces:
                raise Refusal(R.REDUCE_ONLY_STATE, scope, event.symbol)
        count = book.count if book is not None else 0
        if replacing is not None:
            count -= 1
        if count >= self.settings.max_open_orders:
            raise Refusal(R.TOO_MANY_OPEN_ORDERS, "account", event.account, f"{count} open")
        settings = self.settings
        tokens = self._tokens(
            event.account, event.ts, settings.rate_capacity * _MILLI, settings.rate_per_second
        )
        if tokens < _MILLI:
            raise Refusal(R.RATE_LIMITED, "account", event.account)
        if rules.spot:
            return self._accept_spot(event, rules, instrument, account, signed, price, replacing,
                                     tokens)  # fmt: skip
        # --- exposure: position limit, open interest, tier leverage ---
        same_side = book.open_qty.get((event.symbol, leg, sign), 0) if book is not None else 0
        if replacing is not None and replacing.qty * sign > 0:
            same_side -= abs(replacing.qty)
        exposure = abs(position_qty + sign * (same_side + qty))
        reduce_only = event.reduce_only
        if not reduce_only:
            if rules.position_limit is not None and exposure > rules.position_limit:
                raise Refusal(R.POSITION_LIMIT, "qty", event.qty,
                              f"exposure {format_units(exposure, math.qty_scale)}")  # fmt: skip
            if rules.oi_cap is not None:
                opening = max(0, abs(position_qty + signed) - abs(position_qty))
                if self.ledger.open_interest.get(event.symbol, 0) + opening > rules.oi_cap:
                    raise Refusal(R.OPEN_INTEREST_CAP, "qty", event.qty)
        if rules.option:
            margin = self._option_order_margin(
                event, rules, instrument, account, signed, price, position_qty, leg
            )
        elif not reduce_only:
            tiers = rules.tiers
            at = price if price > mark else mark
            if rules.linear:
                worst = -((-exposure * at * rules.notional_num) // rules.notional_den)
            else:
                worst = math.charge(exposure, at, _ONE)
            bracket = bisect_left(tiers.caps, worst)
            if bracket == len(tiers.caps):
                raise Refusal(R.NOTIONAL_BEYOND_TIERS, "qty", event.qty,
                              f"notional {self._money(worst, rules)}")  # fmt: skip
            leverage = self.leverage.get(event.symbol, _NO_CACHE).get(
                event.account, rules.default_leverage
            )
            tier = tiers.tiers[bracket]
            if leverage > tier.max_leverage:
                raise Refusal(R.LEVERAGE_EXCEEDS_TIER, "leverage", leverage,
                              f"bracket maximum {tier.max_leverage}")  # fmt: skip
            # margin.contract.order_margin, with the notional already computed above
            margin = -((-size) // leverage)
            if (price - mark) * sign > 0:
                margin += open_loss(math, signed, price, mark)
        else:
            margin = 0
        # --- margin ---
        debtors = self._debtors
        if debtors and not reduce_only and event.account in debtors:
            raise Refusal(R.SPOT_MARGIN_ACCOUNT, "account", event.account, "owes spot-margin loans")
        isolated = account.margin_modes.get(event.symbol, _CROSS) is not _CROSS
        settle = rules.settle
        if margin:
            key: Any = (event.symbol, leg) if isolated else settle
            used = book.margin.get(key, 0) if book is not None else 0
            if replacing is not None:
                used -= replacing.reserved
            if isolated:
                available = self._isolated_available(account, event.symbol, leg, mark, rules) - used
            else:
                balance = account.balances.get(settle)
                wallet = balance.free if balance is not None else 0
                cached = self._surplus.get(settle, _NO_CACHE).get(event.account)
                if cached is not None and cached[0] == self._epoch and event.ts <= cached[1]:
                    surplus = cached[2]
                else:
                    surplus = self._cross_surplus(account, settle, event.ts)
                available = wallet + surplus - used
            if margin > available:
                raise Refusal(R.INSUFFICIENT_MARGIN, "qty", event.qty,
                              f"margin {self._money(margin, rules)} > available "
                              f"{self._money(available, rules)}")  # fmt: skip
        # --- accept: nothing below may fail ---
        order = GateOrder(
            event.order_id,
            event.account,
            event.symbol,
            leg,
            signed,
            price,
            reduce_only,
            False,
            isolated,
            settle,
            margin,
        )  # fmt: skip  (positional: the field order of GateOrder)
        self._commit(event, order, replacing, tokens)
        return [
            OrderAccepted(seq=event.seq, id=event.id, order_id=event.order_id,
                          action=event.action, asset=settle, reserved=margin)
        ]  # fmt: skip

    def _on_request(self, event: OrderRequest) -> list[Output]:
        """An order request. The fast path: a new order is accepted here when its context
        (:class:`_Context`) and the live order count, token bucket, open quantity, open
        interest, debts, wallet and orders' margin plainly pass every check of :meth:`_new`,
        with the same reservation and the same changes. Anything else (replace, cancel,
        reduce-only, spot-margin, a check that does not plainly pass) goes to
        :meth:`_decide`, which names the first failing check."""
        if event.action != _NEW:
            return self._decide(event)
        context = self._contexts.get((event.account, event.symbol))
        if context is None:
            context = self._context(event)
        ts = event.ts
        if ts > context.until or event.reduce_only or event.margin or event.order_id in self.orders:
            return self._decide(event)
        shape = context.shapes.get(
            (event.side, event.order_type, event.time_in_force, event.position_side)
        )
        if shape is None:
            shape = self._shape(context, event)
            if shape is None:
                return self._decide(event)
        sign, price, position_qty, book_key = shape
        qty = context.qtys.get(event.qty)
        if qty is None:
            qty = _first_parse(context.math.remember_qty, event.qty, context.math.qty_scale)
        if qty is None or qty % context.lot or qty < context.min_qty or qty > context.max_qty:
            return self._decide(event)
        if price is None:  # a limit order: its price cached as parsed, on the tick, in the band
            price = context.prices.get(event.price)
            if price is None and event.price is not None:
                price = _first_parse(
                    context.math.remember_price, event.price, context.math.price_scale
                )
            if price is None or price % context.tick or not context.low <= price <= context.high:
                return self._decide(event)
        elif event.price is not None:
            return self._decide(event)
        if context.linear:
            size = -((-qty * price * context.num) // context.den)
        else:
            size = context.math.charge(qty, price, _ONE)
        if size < context.min_notional or size > context.max_notional:
            return self._decide(event)
        account_id = event.account
        book = self._books.get(account_id)
        if book is None:
            count = same_side = used = 0
        else:
            count = book.count
            same_side = book.open_qty.get(book_key, 0)
            used = book.margin.get(context.settle, 0)
        if count >= context.max_open:
            return self._decide(event)
        bucket = self.buckets.get(account_id)  # as _tokens does (inline: a call costs as much)
        if bucket is None:
            tokens = context.capacity
        else:
            tokens, last = bucket
            if ts > last:
                tokens += (ts - last) * context.refill
            if tokens > context.capacity:
                tokens = context.capacity
        if tokens < _MILLI:
            return self._decide(event)
        exposure = abs(position_qty + sign * (same_side + qty))
        if exposure > context.position_limit:
            return self._decide(event)
        signed = sign * qty
        if context.oi_cap is not None:
            opening = max(0, abs(position_qty + signed) - abs(position_qty))
            if self.ledger.open_interest.get(event.symbol, 0) + opening > context.oi_cap:
                return self._decide(event)
        mark = context.mark
        at = price if price > mark else mark
        if context.linear:
            worst = -((-exposure * at * context.num) // context.den)
        else:
            worst = context.math.charge(exposure, at, _ONE)
        if worst > context.worst_cap:
            return self._decide(event)
        margin = -((-size) // context.leverage)  # >= 1: size >= 1
        if (price - mark) * sign > 0:
            margin += open_loss(context.math, signed, price, mark)
        debtors = self._debtors
        if debtors and account_id in debtors:
            return self._decide(event)
        settle = context.settle
        balance = context.account.balances.get(settle)
        wallet = balance.free if balance is not None else 0
        if margin > wallet + context.surplus - used:
            return self._decide(event)
        # --- accept: what _commit and _add_to_book do, with the keys already at hand ---
        order_id = event.order_id
        self.orders[order_id] = GateOrder(
            order_id, account_id, event.symbol, event.position_side, signed, price,
            event.reduce_only, False, False, settle, margin,
        )  # fmt: skip
        if book is None:
            book = self._books[account_id] = _Book()
        book.count = count + 1
        book.open_qty[book_key] = same_side + qty
        book.margin[settle] = used + margin
        self.buckets[account_id] = (tokens - _MILLI, ts)
        return [
            OrderAccepted(seq=event.seq, id=event.id, order_id=order_id, action=event.action,
                          asset=settle, reserved=margin)
        ]  # fmt: skip

    def _context(self, event: OrderRequest) -> _Context:
        """Resolve and keep the request's pair's context (:data:`_GENERAL` where the fast path
        does not apply: then every request of the pair goes to :meth:`_decide` until the
        contexts are dropped)."""
        context = self._resolve(event.account, event.symbol, event.ts)
        self._contexts[(event.account, event.symbol)] = context
        self._context_symbols.setdefault(event.account, []).append(event.symbol)
        self._dependents.setdefault(event.symbol, set()).add(event.account)
        return context

    def _resolve(self, account_id: str, symbol: str, now: int) -> _Context:
        """The pair's context at event time ``now``: only a cross derivative (not an option)
        with everything ACTIVE, a usable mark and a cross aggregate gets one, as those are
        the orders whose checks all reduce to integers known until the next event the gate
        does not own."""
        ledger = self.ledger
        account = ledger.accounts.get(account_id)
        instrument = ledger.instruments.get(symbol)
        rules = self.rules.get(symbol)
        if (
            account is None
            or instrument is None
            or rules is None
            or rules.spot
            or rules.option
            or rules.tiers is None
            or instrument.status is not _TRADING
            or self._state_of(account_id, symbol)[0] is not _ACTIVE
            or account.margin_modes.get(symbol, _CROSS) is not _CROSS
        ):
            return _GENERAL
        mark, _why, until = self.market.mark_status(symbol, now)
        if mark is None:
            return _GENERAL
        try:
            _epoch, surplus_until, surplus = self._cross_aggregate(account, rules.settle, now)
        except Refusal:
            return _GENERAL
        if instrument.expiry is not None:
            until = min(until, instrument.expiry - 1)
        context = _Context(min(until, surplus_until))
        context.account = account
        context.hedge = account.position_mode is _HEDGE
        context.shapes = {}
        context.math = math = rules.math
        context.qtys, context.prices = math.parsed_qtys, math.parsed_prices
        context.lot, context.tick = instrument.lot_size, instrument.tick_size
        context.min_qty, context.max_qty = instrument.min_qty, instrument.max_qty
        context.mark, context.slippage = mark, rules.slippage
        half_band = rules.band * mark // _ONE  # gap * _ONE <= band * mark, gap an integer
        context.low, context.high = mark - half_band, mark + half_band
        context.linear, context.num, context.den = (
            rules.linear,
            rules.notional_num,
            rules.notional_den,
        )
        context.min_notional = instrument.min_notional
        context.max_notional = _FOREVER if rules.max_notional is None else rules.max_notional
        context.position_limit = _FOREVER if rules.position_limit is None else rules.position_limit
        context.oi_cap = rules.oi_cap
        settings = self.settings
        context.max_open = settings.max_open_orders
        context.capacity = settings.rate_capacity * _MILLI
        context.refill = settings.rate_per_second
        context.leverage = leverage = self.leverage.get(symbol, _NO_CACHE).get(
            account_id, rules.default_leverage
        )
        context.worst_cap = -1
        for cap, tier in zip(rules.tiers.caps, rules.tiers.tiers, strict=True):
            if leverage > tier.max_leverage:
                break
            context.worst_cap = cap
        context.settle, context.surplus = rules.settle, surplus
        return context

    def _shape(self, context: _Context, event: OrderRequest) -> tuple[int, int | None, int,
                                                                     tuple] | None:  # fmt: skip
        """Check the request's side, type, time in force and position side as :meth:`_new`
        does and keep, for the pair's later requests of that shape, its sign, a market
        order's margining price, the position of its leg and its key in the book; None for a
        shape :meth:`_new` refuses."""
        sign = _SIGN.get(event.side)
        kind, tif, leg = event.order_type, event.time_in_force, event.position_side
        if (
            sign is None
            or tif not in _TIFS
            or (leg == _BOTH) == context.hedge
            or leg not in (_BOTH, _LONG, _SHORT)
        ):
            return None
        if kind == _LIMIT:
            price = None
        elif kind == _MARKET and tif in _MARKET_TIFS:
            price = _market_price(context.mark, sign, context.slippage, context.tick)
        else:
            return None
        position = context.account.positions.get((event.symbol, leg))
        shape = (
            sign,
            price,
            position.qty if position is not None else 0,
            (event.symbol, leg, sign),
        )
        context.shapes[(event.side, kind, tif, leg)] = shape
        return shape

    def _tokens(self, account_id: str, now: int, capacity: int, refill: int) -> int:
        """The account's token bucket (milli-tokens) at event time ``now``, refilled lazily
        (tokens/s == milli-tokens/ms), before this request takes its token."""
        bucket = self.buckets.get(account_id)
        if bucket is None:
            return capacity
        tokens, last = bucket
        if now > last:
            tokens += (now - last) * refill
        return tokens if tokens < capacity else capacity

    def _accept_spot(
        self, event: OrderRequest, rules: InstrumentRules, instrument: Any, account: Any,
        signed: int, price: int, replacing: GateOrder | None, tokens: int,
    ) -> list[Output]:  # fmt: skip
        """Spot: lock quote (buy, notional × (1 + fee reserve), rounded up) or base (sell),
        out of the free balance less what cross derivatives in that asset rely on (their
        ``used − (UPNL − IM)`` when positive), so that no available margin turns negative."""
        qty = signed if signed > 0 else -signed
        if signed > 0:
            asset = instrument.quote
            amount = rules.math.charge(qty, price, _ONE + rules.fee_reserve)
        else:
            asset = instrument.base
            amount = qty * rules.base_per_qty
        balance = account.balances.get(asset)
        free = balance.free if balance is not None else 0
        book = self._books.get(event.account)
        used = book.margin.get(asset, 0) if book is not None else 0
        shortfall = self._cross_surplus(account, asset, event.ts) - used
        if shortfall < 0:  # cross derivatives already rely on part of the free balance
            free += shortfall
        if replacing is not None and replacing.asset == asset:
            free += replacing.reserved
        borrow = 0
        if amount > free:
            scale = self.ledger.assets[asset].scale
            wanted, held = format_units(amount, scale), format_units(free, scale)
            if not event.margin:
                raise Refusal(R.INSUFFICIENT_BALANCE, "qty", event.qty,
                              f"{asset} {wanted} > {held}")  # fmt: skip
            borrow = amount - (free if free > 0 else 0)
            most = self._borrowable(event, asset)
            if borrow > most:
                raise Refusal(R.INSUFFICIENT_BALANCE, "qty", event.qty,
                              f"{asset} {wanted} > free {held} + borrowable "
                              f"{format_units(most, scale)}")  # fmt: skip
        previous = self.borrowed.get(event.order_id) if replacing is not None else None
        if previous is not None and previous[0] != asset:
            raise Refusal(R.INVALID_ORDER, "side", event.side, "a spot-margin order's loan "
                          "is in the asset it locks: replace keeps the side")  # fmt: skip
        # --- accept: nothing below may fail (the loan was checked by _borrowable) ---
        if borrow:
            self.ledger.loans.borrow(event.account, asset, borrow, event.ts)
            self.borrowed[event.order_id] = (asset, borrow + (previous[1] if previous else 0))
        if replacing is not None and replacing.reserved:
            self.ledger.unlock(replacing.account, replacing.asset, replacing.reserved)
        self.ledger.lock(event.account, asset, amount)
        order = GateOrder(
            order_id=event.order_id, account=event.account, symbol=event.symbol,
            position_side=_BOTH, qty=signed, price=price, reduce_only=False, spot=True,
            isolated=False, asset=asset, reserved=amount,
        )  # fmt: skip
        self._commit(event, order, replacing, tokens)
        return [
            OrderAccepted(seq=event.seq, id=event.id, order_id=event.order_id,
                          action=event.action, asset=asset, reserved=amount)
        ]  # fmt: skip

    def _borrowable(self, event: OrderRequest, asset: str) -> int:
        """What the account may borrow of ``asset`` now (``LoanBook.max_borrowable``); a loan
        it cannot take at all is refused with its own reason."""
        try:
            return self.ledger.loans.max_borrowable(event.account, asset, event.ts)
        except LoanRefusal as refusal:
            reason = (
                R.VALUATION_PRICE_MISSING
                if refusal.reason is LoanRejectReason.PRICE_UNAVAILABLE
                else R.BORROW_UNAVAILABLE
            )
            raise Refusal(reason, refusal.field, refusal.value, refusal.message) from None

    def _commit(
        self, event: OrderRequest, order: GateOrder, replacing: GateOrder | None, tokens: int
    ) -> None:
        if replacing is not None:
            self._remove_from_book(replacing)
        self.orders[order.order_id] = order
        self._add_to_book(order)
        self.buckets[event.account] = (tokens - _MILLI, event.ts)

    # --- margin helpers --------------------------------------------------------------------

    def _cross_surplus(self, account: Any, asset: str, now: int) -> int:
        """``Σ UPNL − Σ IM`` over the account's cross positions settled in ``asset``, at their
        marks (see :meth:`_cross_aggregate`)."""
        return self._cross_aggregate(account, asset, now)[2]

    def _cross_aggregate(self, account: Any, asset: str, now: int) -> tuple[int, int, int]:
        """``(epoch, valid_until, Σ UPNL − Σ IM)`` over the account's cross positions settled
        in ``asset``, at their marks. Cached until an event that can move a mark or a position
        (epoch) or until the first of those marks' indexes could age out (``valid_until``)."""
        cached = self._surplus.get(asset, _NO_CACHE).get(account.id)
        if cached is not None and cached[0] == self._epoch and now <= cached[1]:
            return cached
        total = 0
        valid_until = _FOREVER
        dependents = self._dependents
        for (symbol, _leg), position in account.positions.items():
            if not position.qty or position.margin_mode is not _CROSS:
                continue
            instrument = self.ledger.instruments[symbol]
            if instrument.settle != asset:
                continue
            dependents.setdefault(symbol, set()).add(account.id)
            if instrument.is_option:  # long: premium paid, no margin, value not counted
                if position.qty < 0:
                    im, fresh_until = self._option_position_margin(
                        symbol, instrument, -position.qty, now
                    )
                    total -= im
                    if fresh_until < valid_until:
                        valid_until = fresh_until
                continue
            rules = self.rules.get(symbol)
            math = self.ledger.contract_math(symbol)
            mark, why, fresh_until = self.market.mark_status(symbol, now)
            if mark is None:
                raise Refusal(_MARK_REASONS[why], "position", symbol)
            if fresh_until < valid_until:
                valid_until = fresh_until
            leverage = (
                self.leverage.get(symbol, _NO_CACHE).get(account.id, rules.default_leverage)
                if rules is not None
                else 1
            )
            total += unrealized_pnl(math, position.qty, position.entry_value, mark)
            total -= initial_margin(notional(math, position.qty, mark), leverage)
        aggregate = (self._epoch, valid_until, total)
        self._surplus.setdefault(asset, {})[account.id] = aggregate
        return aggregate

    def _isolated_available(
        self, account: Any, symbol: str, leg: PositionSide, mark: int, rules: InstrumentRules
    ) -> int:
        """The isolated position's margin + UPNL − IM (before its orders' margin)."""
        position = account.positions.get((symbol, leg))
        if position is None:
            return 0
        math = rules.math
        leverage = self.leverage.get(symbol, _NO_CACHE).get(account.id, rules.default_leverage)
        return (
            position.isolated_margin
            + unrealized_pnl(math, position.qty, position.entry_value, mark)
            - initial_margin(notional(math, position.qty, mark), leverage)
        )

    # --- options -------------------------------------------------------------------------

    def _option_params(self, symbol: str) -> OptionMarginConfigured:
        config = self.option_configs.get(symbol)
        return (
            config
            if config is not None
            else OptionMarginConfigured(seq=0, id="", ts=0, symbol=symbol)
        )

    def _option_mark(self, symbol: str, instrument: Any, now: int) -> tuple[Fraction, Fraction,
                                                                              int]:  # fmt: skip
        """``(option mark per one underlying in the settlement asset, underlying price,
        fresh_until)`` from the published mark (Black-76 at the mark's own time, so a pure
        function of state); refuses a missing or stale mark (fail closed)."""
        published = self.market.option_mark(symbol)
        if published is None:
            raise Refusal(R.OPTION_MARK_MISSING, "symbol", symbol)
        max_age = self._option_params(symbol).mark_max_age_ms
        fresh_until = published[0] + max_age
        if now > fresh_until:
            raise Refusal(R.OPTION_MARK_STALE, "symbol", symbol, f"published at {published[0]}")
        cached = self._option_marks.get(symbol)
        if cached is not None and cached[0] == published:
            return cached[1], cached[2], fresh_until
        ts, forward_units, iv_units = published
        forward = Fraction(forward_units, 10**OBSERVED_SCALE)
        strike = Fraction(instrument.strike, 10**instrument.price_scale)
        value = black76_value(
            instrument.option_kind, forward, strike, Fraction(iv_units, 10**OBSERVED_SCALE),
            Fraction(instrument.expiry - ts, YEAR_MS),
        )  # fmt: skip
        mark = value / forward if instrument.settle == instrument.base else value
        self._option_marks[symbol] = (published, mark, forward)
        return mark, forward, fresh_until

    def _option_mark_units(self, symbol: str, instrument: Any, now: int) -> int:
        """The option mark at the instrument's price scale, rounded up, at least one tick."""
        mark, _forward, _until = self._option_mark(symbol, instrument, now)
        scaled = mark * 10**instrument.price_scale
        units = -((-scaled.numerator) // scaled.denominator)
        return units if units > instrument.tick_size else instrument.tick_size

    def _option_short_margin(self, symbol: str, instrument: Any, now: int) -> tuple[Fraction, int]:
        """Initial margin of one short option on one underlying, in the settlement asset
        (Deribit or OKX, margin/options.py; quote-settled: the coin terms times the
        underlying price, as OKX's USDⓈ variant), and ``fresh_until``."""
        mark, forward, fresh_until = self._option_mark(symbol, instrument, now)
        coin = instrument.settle == instrument.base
        mark_coin = mark if coin else mark / forward
        kind: OptionKind = instrument.option_kind
        strike = Fraction(instrument.strike, 10**instrument.price_scale)
        params = self._option_params(symbol)
        if params.model == "okx":
            factor = Fraction(params.margin_factor)
            im, _mm = okx_short_option_margin(
                kind, otm_amount(kind, strike, forward), forward, mark_coin, factor
            )
        else:
            im, _mm = deribit_short_option_margin(kind, strike, forward, mark_coin)
        return (im if coin else im * forward), fresh_until

    def _per_underlying(self, math: Any, per_unit: Fraction, qty: int) -> int:
        """``per_unit × qty × M`` (``per_unit`` in the settlement asset per one underlying) in
        settlement minor units, rounded up."""
        scaled = (
            per_unit
            * qty
            * math.multiplier
            * 10**math.settle_scale
            / 10 ** (math.value_scale - math.price_scale)
        )
        return -((-scaled.numerator) // scaled.denominator)

    def _option_position_margin(self, symbol: str, instrument: Any, short_qty: int,
                                now: int) -> tuple[int, int]:  # fmt: skip
        per_unit, fresh_until = self._option_short_margin(symbol, instrument, now)
        return self._per_underlying(
            self.ledger.contract_math(symbol), per_unit, short_qty
        ), fresh_until

    def _option_order_margin(
        self, event: OrderRequest, rules: InstrumentRules, instrument: Any, account: Any,
        signed: int, price: int, position_qty: int, leg: PositionSide,
    ) -> int:  # fmt: skip
        """A buy reserves its premium plus the fee reserve (``qty × M × price × (1 +
        fee_reserve)``, rounded up), whatever it closes. A sell that closes a long reserves
        nothing; the part that opens (or adds to) a short reserves the short's initial margin
        at the mark less the premium it will receive plus the fee reserve, at least
        ``min_open_margin`` per underlying (OKX sell-to-open, §4.2), never below 0."""
        math = rules.math
        if signed > 0:
            return math.charge(signed, price, _ONE + rules.fee_reserve)
        qty = -signed
        held_long = position_qty if (position_qty > 0 and leg != _SHORT) else 0
        opening = qty - min(qty, held_long)
        if not opening:
            return 0
        per_unit, _until = self._option_short_margin(event.symbol, instrument, event.ts)
        im = self._per_underlying(math, per_unit, opening)
        premium = math.payout(opening, price, _ONE)
        fee = math.charge(opening, price, rules.fee_reserve) if rules.fee_reserve else 0
        params = self._option_params(event.symbol)
        floor = self._per_underlying(math, Fraction(params.min_open_margin), opening)
        margin = max(im - premium + fee, floor)
        return margin if margin > 0 else 0

    def _on_option_configured(self, event: OptionMarginConfigured) -> list[Output]:
        instrument = self.ledger.instruments.get(event.symbol)
        if instrument is None:
            raise RejectError(RejectReason.UNKNOWN_INSTRUMENT, "symbol", event.symbol, "")
        if not instrument.is_option:
            raise RejectError(RejectReason.NOT_APPLICABLE, "symbol", event.symbol, "no option")
        if event.model not in ("deribit", "okx"):
            raise RejectError(RejectReason.INVALID_PARAMETER, "model", event.model,
                              "deribit or okx")  # fmt: skip
        for field in ("margin_factor", "min_open_margin"):
            text = getattr(event, field)
            try:
                parse_units(text, 8, field=field, minimum=0)
            except FixedPointError as error:
                raise RejectError(RejectReason.INVALID_NUMBER, field, text, error.reason) from None
        if type(event.mark_max_age_ms) is not int or event.mark_max_age_ms < 1:
            raise RejectError(RejectReason.INVALID_PARAMETER, "mark_max_age_ms",
                              event.mark_max_age_ms, "must be >= 1")  # fmt: skip
        self.option_configs[event.symbol] = msgspec.structs.replace(event, seq=0, id="", ts=0)
        self._bump()
        return []

    # --- books -----------------------------------------------------------------------------

    def _add_to_book(self, order: GateOrder) -> None:
        book = self._books.get(order.account)
        if book is None:
            book = self._books[order.account] = _Book()
        book.count += 1
        if order.qty:  # a filled order open until its OrderDone holds no quantity (no key)
            key = (order.symbol, order.position_side, 1 if order.qty > 0 else -1)
            book.open_qty[key] = book.open_qty.get(key, 0) + abs(order.qty)
        if not order.spot and order.reserved:
            margin_key = (order.symbol, order.position_side) if order.isolated else order.asset
            book.margin[margin_key] = book.margin.get(margin_key, 0) + order.reserved

    def _remove_from_book(self, order: GateOrder) -> None:
        book = self._books[order.account]
        book.count -= 1
        if order.qty:
            key = (order.symbol, order.position_side, 1 if order.qty > 0 else -1)
            left = book.open_qty[key] - abs(order.qty)
            if left:
                book.open_qty[key] = left
            else:
                del book.open_qty[key]
        if not order.spot and order.reserved:
            margin_key = (order.symbol, order.position_side) if order.isolated else order.asset
            left = book.margin[margin_key] - order.reserved
            if left:
                book.margin[margin_key] = left
            else:
                del book.margin[margin_key]
        if not book.count:
            del self._books[order.account]

    # --- completion and fills --------------------------------------------------------------

    def _on_done(self, event: OrderDone) -> list[Output]:
        order = self.orders.get(event.order_id)
        if order is None:
            raise RejectError(
                RejectReason.NOT_APPLICABLE, "order_id", event.order_id, "no such order"
            )
        if event.reason not in _DONE_REASONS:
            raise RejectError(RejectReason.INVALID_PARAMETER, "reason", event.reason, "")
        left = 0
        if order.spot:
            left = self._still_locked(order, order.reserved)
            if left:
                self.ledger.unlock(order.account, order.asset, left)
        self._remove_from_book(order)
        del self.orders[event.order_id]
        loan = self.borrowed.pop(event.order_id, None)
        if loan is not None:
            return self._auto_repay(event, order.account, loan[0], min(loan[1], left))
        return []

    def _auto_repay(self, event: OrderDone, account_id: str, asset: str, unused: int) -> list[
            Output]:  # fmt: skip
        """A spot-margin order is done: the part of its loan it did not spend (``unused``, at
        most what was still locked) is repaid with the outstanding interest, as far as the
        free balance and the debt go (Binance ``AUTO_REPAY``); interest first."""
        loans = self.ledger.loans
        if unused <= 0 or loans.loan(account_id, asset) is None:
            return []
        principal, interest = loans.debt(account_id, asset, event.ts)
        balance = self.ledger.accounts[account_id].balances.get(asset)
        free = balance.free if balance is not None else 0
        amount = min(unused + interest, principal + interest, free)
        if amount <= 0:
            return []
        paid_interest, paid_principal, closed = loans.repay(account_id, asset, amount, event.ts)
        return [
            LoanRepaid(seq=event.seq, id=event.id, account=account_id, asset=asset,
                       interest=paid_interest, principal=paid_principal, closed=closed)
        ]  # fmt: skip

    def cancel_account_orders(self, account_id: str) -> list[str]:
        """Cancel every open order of ``account_id`` (the liquidation engine's first stage),
        releasing each reservation as a cancelling ``OrderDone`` does; the ids, sorted."""
        ids = sorted(oid for oid, order in self.orders.items() if order.account == account_id)
        for order_id in ids:
            order = self.orders.pop(order_id)
            self.borrowed.pop(order_id, None)  # no auto-repay: the liquidation repays the debt
            if order.spot:
                left = self._still_locked(order, order.reserved)
                if left:
                    self.ledger.unlock(order.account, order.asset, left)
            self._remove_from_book(order)
        return ids

    def _filled_orders(self, event: Fill) -> list[tuple[GateOrder, int]]:
        """The gated orders a fill names, with its quantity (contracts); pure."""
        found = []
        for order_id, account_id, sign in (
            (event.buy_order_id, event.buyer, 1),
            (event.sell_order_id, event.seller, -1),
        ):
            if order_id is None:
                continue
            order = self.orders.get(order_id)
            if (
                order is None
                or order.account != account_id
                or order.symbol != event.symbol
                or order.qty * sign <= 0
            ):
                continue
            rules = self.rules.get(order.symbol)
            if rules is None:
                continue
            try:
                filled = parse_units(event.qty, rules.math.qty_scale, field="qty", minimum=1)
            except FixedPointError:
                return []
            found.append((order, filled))
        return found

    def _reservations(self, event: Fill) -> list[tuple[str, str, int]]:
        """The ledger's hook: locked units the fill consumes from the spot orders it names."""
        releases = []
        for order, filled in self._filled_orders(event):
            if order.spot:
                amount = self._still_locked(order, release_share(order, filled))
                if amount:
                    releases.append((order.account, order.asset, amount))
        return releases

    def _still_locked(self, order: GateOrder, amount: int) -> int:
        """``amount`` capped by the account's locked balance: a forced charge (funding or
        expiry beyond the free wallet, ``Ledger._force_charge``) may have taken locked funds."""
        balance = self.ledger.accounts[order.account].balances.get(order.asset)
        locked = balance.locked if balance is not None else 0
        return amount if amount <= locked else locked

    def _on_fill(self, event: Fill) -> None:
        self._forget(event.buyer)
        self._forget(event.seller)
        if event.buy_order_id is None and event.sell_order_id is None:
            return
        for order, filled in self._filled_orders(event):
            released = release_share(order, filled)
            self._remove_from_book(order)
            remaining = abs(order.qty) - min(filled, abs(order.qty))
            order.qty = remaining if order.qty > 0 else -remaining
            order.reserved -= released
            self._add_to_book(order)

    def _bump(self, _event: object = None) -> None:
        """A new epoch: the cross aggregates and the new-order contexts of the last one are
        dropped (their marks or positions may have moved)."""
        self._epoch += 1
        self._drop_contexts()
        self._dependents.clear()

    def _on_quote(self, event: SourcePrice) -> None:
        """A source quote re-evaluates its index and every mark priced off it."""
        self._marks_moved(self.market.marks_of(event.symbol))

    def _on_symbol_price(self, event: BookTop | FundingDue) -> None:
        """A book top or a funding settlement moves its own symbol's mark only (funding
        payments change wallets, which are read live)."""
        self._marks_moved((event.symbol,))

    def _marks_moved(self, symbols: Iterable[str]) -> None:
        """Forget every account whose context or cross aggregate read one of ``symbols``'
        marks (or their index's freshness). The others stand: their marks did not move, and
        their positions change only through events that forget them."""
        dependents = self._dependents
        for symbol in symbols:
            for account_id in dependents.pop(symbol, ()):
                self._forget(account_id)

    def positions_changed(self, account_id: str) -> None:
        """Forget what was derived from ``account_id``'s positions: for the liquidation engine,
        which changes positions inside price events (takeovers, step-downs, spot-margin
        liquidation) that no longer drop every cache."""
        self._forget(account_id)

    def _forget(self, account_id: str) -> None:
        """Drop what the gate derived from one account's positions: its contexts and cross
        aggregates. A fill changes only its two accounts' positions and balances (and the open
        interest, read live); it moves no mark (the market keeps the trade's price for its next
        evaluation, which a price event starts), so the other accounts' stand."""
        contexts = self._contexts
        for symbol in self._context_symbols.pop(account_id, ()):
            contexts.pop((account_id, symbol), None)
        for by_account in self._surplus.values():
            by_account.pop(account_id, None)

    def _drop_contexts(self, _event: object = None) -> None:
        """The new-order contexts are dropped (a setting, state or balance they read may have
        changed); the cross aggregates stand."""
        self._contexts.clear()
        self._context_symbols.clear()

    # --- admin -----------------------------------------------------------------------------

    def _on_configured(self, event: GateConfigured) -> list[Output]:
        for field in ("max_open_orders", "rate_capacity", "rate_per_second"):
            value = getattr(event, field)
            if type(value) is not int or value < 1:
                raise RejectError(RejectReason.INVALID_PARAMETER, field, value, "must be >= 1")
        self.settings = event
        self._drop_contexts()
        return []

    def _on_instrument_configured(self, event: GateInstrumentConfigured) -> list[Output]:
        if event.symbol not in self.ledger.instruments:
            raise RejectError(RejectReason.UNKNOWN_INSTRUMENT, "symbol", event.symbol, "")
        self._install(event)
        return []

    def _install(self, config: GateInstrumentConfigured) -> None:
        ledger = self.ledger
        instrument = ledger.instruments[config.symbol]
        self.rules[config.symbol] = resolve_rules(
            config,
            instrument,
            ledger.contract_math(config.symbol),
            ledger.assets[instrument.settle].scale,
            ledger.assets[instrument.base].scale,
        )
        self._bump()

    def _on_set_leverage(self, event: SetLeverage) -> list[Output]:
        account = self.ledger.accounts.get(event.account)
        if account is None:
            raise RejectError(RejectReason.UNKNOWN_ACCOUNT, "account", event.account, "")
        rules = self.rules.get(event.symbol)
        if rules is None or rules.tiers is None:
            raise RejectError(RejectReason.NOT_APPLICABLE, "symbol", event.symbol, "no tiers")
        if type(event.leverage) is not int or event.leverage < 1:
            raise RejectError(RejectReason.INVALID_PARAMETER, "leverage", event.leverage, ">= 1")
        mark, _why, _until = self.market.mark_status(event.symbol, event.ts)
        exposure = 0
        for leg in (_BOTH, _LONG, _SHORT):
            position = account.positions.get((event.symbol, leg))
            if position is not None:
                exposure = max(exposure, abs(position.qty))
        maximum = rules.tiers.tiers[0].max_leverage
        if exposure:
            if mark is None:
                raise RejectError(RejectReason.NOT_APPLICABLE, "symbol", event.symbol, "no mark")
            maximum = rules.tiers.max_leverage(notional(rules.math, exposure, mark))
        if event.leverage > maximum:
            raise RejectError(RejectReason.INVALID_PARAMETER, "leverage", event.leverage,
                              f"bracket maximum {maximum}")  # fmt: skip
        self.leverage.setdefault(event.symbol, {})[event.account] = event.leverage
        self._bump()
        return []

    def _on_set_trading_state(self, event: SetTradingState) -> list[Output]:
        state = TradingState(event.state)
        scope = TradingScope(event.scope)
        if scope is TradingScope.PLATFORM:
            self.platform_state = state
            self._drop_contexts()
            return []
        known = (
            self.ledger.instruments if scope is TradingScope.INSTRUMENT else self.ledger.accounts
        )
        if event.target not in known:
            reason = (
                RejectReason.UNKNOWN_INSTRUMENT
                if scope is TradingScope.INSTRUMENT
                else RejectReason.UNKNOWN_ACCOUNT
            )
            raise RejectError(reason, "target", event.target, "")
        if state is _ACTIVE:
            self.states.pop((scope.value, event.target), None)
        else:
            self.states[(scope.value, event.target)] = state
        self._drop_contexts()
        return []


def _market_price(mark: int, sign: int, slippage: int, tick: int) -> int:
    """A market order is margined at the worst price its slippage protection allows: the mark
    moved by ``slippage`` against the order, on the tick grid, at least one tick."""
    move = mark * slippage
    if sign > 0:
        return -((-(mark * _ONE + move)) // (_ONE * tick)) * tick
    return max((mark * _ONE - move) // (_ONE * tick) * tick, tick)


def _first_parse(remember: Any, text: object, scale: int) -> int | None:
    """A text the parse cache has not seen: its units, remembered as :meth:`Gate._new` does,
    or None for a text that :meth:`Gate._new` refuses (it then names the problem)."""
    try:
        units = parse_units(text, scale, field="", minimum=1)
    except FixedPointError:
        return None
    return remember(text, units)


def _number(text: object, scale: int, field: str) -> int:
    try:
        return parse_units(text, scale, field=field, minimum=1)
    except FixedPointError as error:
        raise Refusal(R.INVALID_NUMBER, field, text, error.reason) from None
