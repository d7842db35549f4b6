"""Engine component: index prices from SourcePrice, marks, premium sampling and funding settlement.

Numbers: source and index prices are integers at the index's ``price_scale``; a mark is computed
at that scale (:mod:`fengkong.market.mark`) and rounded to the instrument tick, nearest tick,
ties to even, before it leaves as a :class:`~fengkong.market.events.MarkPrice` at the
instrument's price scale. The mark is re-evaluated on every index update and book update, and an
output is emitted only when its price or its usability changes.

Fail closed: an index below quorum makes every mark on it ``stale`` (a MarkPrice with
``stale=True`` is emitted once); :class:`~fengkong.market.events.FundingDue` on a stale or
missing mark is refused and changes nothing, so the scheduler retries it.
"""

from __future__ import annotations

from bisect import insort
from typing import Any

from fengkong.engine.component import RejectError
from fengkong.ledger.contracts import RATE_SCALE
from fengkong.market.events import (
    BookTop,
    FundingDue,
    FundingRateSet,
    IndexConfigured,
    IndexPrice,
    MarkConfigured,
    MarkPrice,
    ObservedLiquidation,
    OptionMark,
    SourcePrice,
)
from fengkong.market.funding import (
    PREMIUM_SCALE,
    PremiumAverage,
    funding_rate,
    premium_index,
)
from fengkong.market.index import (
    WEIGHT_SCALE,
    IndexStatus,
    LiveIndex,
    OutlierRule,
    nearest,
)
from fengkong.market.mark import BasisAverage
from fengkong.model.enums import InstrumentKind
from fengkong.model.events import Fill, Output, RejectReason
from fengkong.model.fixed import FixedPointError, format_units, parse_units

__all__ = ["MarketComponent"]

_PERPETUALS = (InstrumentKind.LINEAR_PERPETUAL, InstrumentKind.INVERSE_PERPETUAL)
_HOUR_MS = 3_600_000
_SETTLEMENT_GRACE_MS = 60_000  # a FundingDue may arrive up to 1 min after the hour
_OK = IndexStatus.OK
_MAX_TEXT = 40  # parse_units' limit on a decimal text
OBSERVED_SCALE = 8
"""Decimals of numbers observed on other venues (option marks' underlying price and IV, forced
orders' quantities and prices): kept exactly at this scale, refused when finer."""
MAX_IV = 10 * 10**OBSERVED_SCALE  # 1,000 % a year: anything above is a malformed mark


def _price_units(text: Any, scale: int, power: int) -> int:
    """``parse_units(text, scale, field="price", minimum=1)`` (``power = 10**scale``).

    The usual text (ASCII digits, no leading zero, at most ``scale`` decimals) is converted
    here; anything else goes to ``parse_units``, which accepts or refuses it with its reasons.
    """
    if type(text) is not str:  # an event built in code, not decoded: parse_units refuses it
        return _number(text, scale, "price", minimum=1)
    whole, dot, fraction = text.partition(".")
    if (
        whole.isdigit()
        and whole[0] != "0"
        and len(text) <= _MAX_TEXT
        and text.isascii()
        and (fraction.isdigit() if dot else True)
        and len(fraction) <= scale
    ):
        if fraction:
            return int(whole + fraction) * 10 ** (scale - len(fraction))
        return int(whole) * power  # >= power >= 1: the minimum holds
    return _number(text, scale, "price", minimum=1)


def _text(units: int, scale: int, power: int) -> str:
    """``format_units(units, scale)`` (``power = 10**scale``): digits cut at the point when
    ``units >= power`` (one ``str``, no division), ``format_units`` itself otherwise."""
    if units < power or not scale:
        return format_units(units, scale)
    text = str(units)
    fraction = text[-scale:].rstrip("0")
    if fraction:
        return text[:-scale] + "." + fraction
    return text[:-scale]


def _number(text: str, scale: int, field: str, minimum: int | None = None) -> int:
    try:
        return parse_units(text, scale, field=field, minimum=minimum)
    except FixedPointError as error:
        raise RejectError(RejectReason.INVALID_NUMBER, field, text, error.reason) from None


class _Index:
    __slots__ = (
        "config", "fresh_until", "healthy", "limit", "live", "marks", "power", "result_price",
        "result_text", "scale", "status", "weights",
    )  # fmt: skip

    def __init__(self, config: IndexConfigured) -> None:
        self.config = config
        self.weights = {
            c.source: parse_units(c.weight, WEIGHT_SCALE, field="weight")
            for c in config.constituents
        }
        self.limit = parse_units(config.limit, WEIGHT_SCALE, field="limit")
        self.scale = config.price_scale
        self.power = 10**config.price_scale
        self.live = LiveIndex(
            self.weights,
            stale_after_ms=config.stale_after_ms,
            rule=config.rule,
            limit=self.limit,
            min_sources=config.min_sources,
        )
        self.marks: list[_Mark] = []  # the marks priced off this index, in symbol order
        self.result_price: int | None = None
        self.result_text: str | None = None  # result_price formatted at the index scale
        self.status = IndexStatus.STALE_NO_SOURCES
        self.healthy: tuple[str, ...] = ()
        self.fresh_until: int | None = None  # lazily computed by MarketComponent.mark_status


class _Mark:
    __slots__ = (
        "basis", "config", "interval_hours", "interval_ms", "last_rate", "last_trade", "mark",
        "power", "premium", "price_scale", "rate_one", "settled_at", "stale", "symbol", "tick",
        "to_index",
    )  # fmt: skip

    def __init__(
        self, config: MarkConfigured, tick: int, to_index: int, price_scale: int, rate_scale: int
    ) -> None:
        self.config = config
        self.symbol = config.symbol
        self.price_scale = price_scale  # the instrument's
        self.power = 10**price_scale
        self.interval_hours = config.funding.interval_hours if config.funding else None
        self.interval_ms = self.interval_hours * _HOUR_MS if self.interval_hours else 0
        self.rate_one = 10**rate_scale * self.interval_ms  # rate_scale units over the interval
        self.tick = tick * to_index  # tick in index units
        self.to_index = to_index  # instrument price unit -> index units
        self.basis = BasisAverage(config.basis_window, config.basis_sample_ms)
        self.premium = PremiumAverage(config.funding.premium_sample_ms) if config.funding else None
        self.last_trade: int | None = None
        self.last_rate = 0
        self.mark: int | None = None
        self.stale = True
        self.settled_at = -1


class MarketComponent:
    """Owns index/mark configuration, SourcePrice, BookTop, FundingDue, and the marks and
    forced orders observed on other venues (OptionMark, ObservedLiquidation)."""

    name = "market"

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self._indexes: dict[str, _Index] = {}
        self._marks: dict[str, _Mark] = {}
        self._rate_scale = RATE_SCALE
        self._option_marks: dict[str, tuple[int, int, int]] = {}  # symbol -> (ts, F, IV)
        self._observed: dict[tuple[str, str], tuple[int, int, int]] = {}

    # --- protocol -------------------------------------------------------------------------

    def handlers(self) -> dict[type, Any]:
        return {
            IndexConfigured: self._on_index_configured,
            SourcePrice: self._on_source_price,
            MarkConfigured: self._on_mark_configured,
            BookTop: self._on_book_top,
            FundingDue: self._on_funding_due,
            OptionMark: self._on_option_mark,
            ObservedLiquidation: self._on_observed_liquidation,
        }

    def observers(self) -> dict[type, Any]:
        return {Fill: self._on_fill}

    def canonical_state(self) -> dict[str, Any]:
        indexes = [
            [name, ix.config, sorted([q.source, q.price, q.time] for q in ix.live.quotes())]
            for name, ix in sorted(self._indexes.items())
        ]
        marks = [
            [
                symbol, m.config, m.basis.state(), m.premium.state() if m.premium else None,
                m.last_trade, m.last_rate, m.mark, m.stale, m.settled_at,
            ]
            for symbol, m in sorted(self._marks.items())
        ]  # fmt: skip
        return {
            "indexes": indexes,
            "marks": marks,
            "option_marks": sorted([s, *mark] for s, mark in self._option_marks.items()),
            # totals as digit strings: a notional at 16 decimals passes msgpack's 64 bits
            "observed": sorted(
                [v, s, n, str(q), str(x)] for (v, s), (n, q, x) in self._observed.items()
            ),
        }

    def restore_state(self, data: dict[str, Any]) -> None:
        import msgspec

        self._indexes.clear()
        self._marks.clear()
        self._option_marks = {s: (ts, f, iv) for s, ts, f, iv in data["option_marks"]}
        self._observed = {(v, s): (n, int(q), int(x)) for v, s, n, q, x in data["observed"]}
        for name, config, quotes in data["indexes"]:
            index = _Index(msgspec.convert(config, IndexConfigured))
            for source, price, time in quotes:
                index.live.load(source, price, time)
            self._indexes[name] = index
        for symbol, config, basis, premium, last_trade, rate, mark, stale, settled in data["marks"]:
            self._add_mark(msgspec.convert(config, MarkConfigured))
            state = self._marks[symbol]
            state.basis.restore(basis)
            if premium is not None and state.premium is not None:
                state.premium.restore(premium)
            state.last_trade, state.last_rate, state.mark = last_trade, rate, mark
            state.stale, state.settled_at = stale, settled
        for index in self._indexes.values():
            now = max((time for time in index.live.times if time is not None), default=0)
            index.live.evaluate(now)
            self._publish(index, now, None)

    # --- queries --------------------------------------------------------------------------

    def mark_price(self, symbol: str) -> int | None:
        """The usable mark of ``symbol`` at its instrument price scale, or None (fail closed)."""
        mark = self._marks.get(symbol)
        if mark is None or mark.stale or mark.mark is None:
            return None
        return mark.mark // mark.to_index

    def marks_of(self, index: str) -> list[str]:
        """The symbols whose marks are priced off ``index``, in symbol order."""
        found = self._indexes.get(index)
        return [] if found is None else [m.symbol for m in found.marks]

    def option_mark(self, symbol: str) -> tuple[int, int, int] | None:
        """The last published mark of option ``symbol``: ``(ts, underlying price, IV)``, both
        numbers at :data:`OBSERVED_SCALE` decimals (IV as a yearly fraction), or None."""
        return self._option_marks.get(symbol)

    def observed_liquidations(self, venue: str, symbol: str) -> tuple[int, int, int]:
        """Forced orders seen on ``venue`` for ``symbol``: ``(count, filled quantity,
        filled notional)``, quantity at :data:`OBSERVED_SCALE` decimals, notional at twice that
        (quantity × average price, exact)."""
        return self._observed.get((venue, symbol), (0, 0, 0))

    def mark_status(self, symbol: str, now: int) -> tuple[int | None, str, int]:
        """``(mark, "ok", fresh_until)`` when ``symbol``'s mark is usable at event time ``now``
        (and stays so through ``fresh_until`` unless an event changes it), else
        ``(None, why, 0)``: ``"missing"`` (no mark configured or computed yet), ``"stale"`` (its
        index was below quorum at the last evaluation) or ``"index_stale"`` (no event has
        re-evaluated the index since, but by ``now`` fewer than ``min_sources`` of the sources
        that made it healthy are still fresh). For consumers that must fail closed (the gate).
        """
        mark = self._marks.get(symbol)
        if mark is None or mark.mark is None:
            return None, "missing", 0
        if mark.stale:
            return None, "stale", 0
        index = self._indexes[mark.config.index]
        fresh_until = index.fresh_until
        if fresh_until is None:
            config = index.config
            live = index.live
            times = sorted((live.times[live.slot[s]] for s in index.healthy), reverse=True)
            if len(times) < config.min_sources:
                return None, "index_stale", 0
            fresh_until = index.fresh_until = times[config.min_sources - 1] + config.stale_after_ms
        if now > fresh_until:
            return None, "index_stale", 0
        return mark.mark // mark.to_index, "ok", fresh_until

    # --- handlers -------------------------------------------------------------------------

    def _on_index_configured(self, event: IndexConfigured) -> list[Output]:
        if not 0 <= event.price_scale <= 18:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "price_scale", event.price_scale, "0..18"
            )
        if event.min_sources < 1 or event.stale_after_ms < 1:
            raise RejectError(
                RejectReason.INVALID_PARAMETER,
                "min_sources",
                event.min_sources,
                "quorum and staleness must be >= 1",
            )
        _number(event.limit, WEIGHT_SCALE, "limit", minimum=0)
        if event.rule not in tuple(OutlierRule):
            raise RejectError(RejectReason.INVALID_PARAMETER, "rule", event.rule, "exclude or cap")
        sources = [c.source for c in event.constituents]
        if not sources or len(set(sources)) != len(sources):
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "constituents", sources, "empty or repeated"
            )
        for c in event.constituents:
            _number(c.weight, WEIGHT_SCALE, "weight", minimum=1)
        previous = self._indexes.get(event.index)
        if previous is not None and previous.config.price_scale != event.price_scale:
            raise RejectError(
                RejectReason.INVALID_PARAMETER,
                "price_scale",
                event.price_scale,
                "fixed at definition",
            )
        index = _Index(event)
        if previous is not None:
            index.marks = previous.marks
            for quote in previous.live.quotes():
                if quote.source in index.weights:
                    index.live.load(quote.source, quote.price, quote.time)
        self._indexes[event.index] = index
        index.live.evaluate(event.ts)
        return self._publish(index, event.ts, event)

    def _on_source_price(self, event: SourcePrice) -> list[Output]:
        index = self._indexes.get(event.symbol)
        if index is None:
            raise RejectError(
                RejectReason.UNKNOWN_INSTRUMENT, "symbol", event.symbol, "no such index"
            )
        live = index.live
        slot = live.slot.get(event.source)
        if slot is None:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "source", event.source, "not a constituent"
            )
        price = _price_units(event.price, index.scale, index.power)
        time = event.time
        now = event.ts
        if time > now:
            raise RejectError(RejectReason.INVALID_PARAMETER, "time", time, "after the event time")
        previous = live.times[slot]
        if previous is not None and time < previous:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "time", time, "older than the last quote"
            )
        live.update(slot, price, time, now)
        return self._publish(index, now, event)

    def _on_mark_configured(self, event: MarkConfigured) -> list[Output]:
        instrument = self.ledger.instruments.get(event.symbol)
        if instrument is None:
            raise RejectError(RejectReason.UNKNOWN_INSTRUMENT, "symbol", event.symbol, "not listed")
        index = self._indexes.get(event.index)
        if index is None:
            raise RejectError(
                RejectReason.UNKNOWN_INSTRUMENT, "index", event.index, "no such index"
            )
        if index.config.price_scale < instrument.price_scale:
            raise RejectError(
                RejectReason.INVALID_PARAMETER,
                "index",
                event.index,
                "index scale below the instrument's",
            )
        perpetual = instrument.kind in _PERPETUALS
        if perpetual != (event.funding is not None):
            raise RejectError(
                RejectReason.INVALID_PARAMETER,
                "funding",
                event.funding,
                "required for perpetuals only",
            )
        if event.basis_window < 1 or event.basis_sample_ms < 1:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "basis_window", event.basis_window, "must be >= 1"
            )
        if event.funding is not None:
            f = event.funding
            if f.interval_hours not in (1, 2, 4, 8) or f.premium_sample_ms < 1:
                raise RejectError(
                    RejectReason.INVALID_PARAMETER,
                    "funding.interval_hours",
                    f.interval_hours,
                    "1/2/4/8",
                )
            for field in ("interest", "clamp", "cap", "floor"):
                _number(getattr(f, field), PREMIUM_SCALE, f"funding.{field}")
        if event.symbol in self._marks:
            raise RejectError(
                RejectReason.ALREADY_EXISTS, "symbol", event.symbol, "mark already configured"
            )
        self._add_mark(event)
        outputs: list[Output] = []
        self._update_mark(self._marks[event.symbol], index, event.ts, event, outputs)
        return outputs

    def _on_book_top(self, event: BookTop) -> list[Output]:
        mark = self._marks.get(event.symbol)
        if mark is None:
            raise RejectError(
                RejectReason.UNKNOWN_INSTRUMENT, "symbol", event.symbol, "no mark configured"
            )
        scale = self._indexes[mark.config.index].config.price_scale
        bid = _number(event.bid, scale, "bid", minimum=1)
        ask = _number(event.ask, scale, "ask", minimum=bid)
        impact_bid = _number(event.impact_bid, scale, "impact_bid", minimum=1)
        impact_ask = _number(event.impact_ask, scale, "impact_ask", minimum=impact_bid)
        index = self._indexes[mark.config.index]
        outputs: list[Output] = []
        if index.status is not _OK or index.result_price is None:
            self._update_mark(mark, index, event.ts, event, outputs)
            return outputs
        price = index.result_price
        mark.basis.observe(event.ts, (bid + ask) // 2 - price)
        if mark.premium is not None:
            mark.premium.observe(event.ts, premium_index(impact_bid, impact_ask, price))
        self._update_mark(mark, index, event.ts, event, outputs)
        return outputs

    def _on_fill(self, event: Fill) -> None:
        mark = self._marks.get(event.symbol)
        if mark is not None:
            # the ledger has just parsed and validated this price text for the same instrument
            price = self.ledger.contract_math(event.symbol).parsed_prices.get(event.price)
            if price is None:
                instrument = self.ledger.instruments[event.symbol]
                price = parse_units(event.price, instrument.price_scale, field="price")
            mark.last_trade = price * mark.to_index

    def _on_option_mark(self, event: OptionMark) -> list[Output]:
        """Keep a listed option's published mark (underlying price and IV) for margin."""
        instrument = self.ledger.instruments.get(event.symbol)
        if instrument is None:
            raise RejectError(RejectReason.UNKNOWN_INSTRUMENT, "symbol", event.symbol, "")
        if not instrument.is_option:
            raise RejectError(RejectReason.NOT_APPLICABLE, "symbol", event.symbol, "not an option")
        underlying = _number(event.underlying_price, OBSERVED_SCALE, "underlying_price", 1)
        iv = _number(event.mark_iv, OBSERVED_SCALE, "mark_iv", 1)
        if iv > MAX_IV:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "mark_iv", event.mark_iv, "above 1,000 % a year"
            )
        self._option_marks[event.symbol] = (event.ts, underlying, iv)
        return []

    def _on_observed_liquidation(self, event: ObservedLiquidation) -> list[Output]:
        """Count a forced order seen on another venue (its filled quantity and notional)."""
        _number(event.qty, OBSERVED_SCALE, "qty", 1)
        _number(event.price, OBSERVED_SCALE, "price", 1)
        average = _number(event.average_price, OBSERVED_SCALE, "average_price", 0)
        filled = _number(event.filled_qty, OBSERVED_SCALE, "filled_qty", 0)
        key = (event.venue, event.symbol)
        count, quantity, notional = self._observed.get(key, (0, 0, 0))
        self._observed[key] = (count + 1, quantity + filled, notional + filled * average)
        return []

    def _on_funding_due(self, event: FundingDue) -> list[Output]:
        mark = self._marks.get(event.symbol)
        if mark is None or mark.premium is None or mark.config.funding is None:
            raise RejectError(
                RejectReason.NOT_APPLICABLE,
                "symbol",
                event.symbol,
                "no perpetual funding configured",
            )
        funding = mark.config.funding
        interval = funding.interval_hours * _HOUR_MS
        if event.ts % interval != 0 and event.ts - (event.ts // interval) * interval > 60_000:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "ts", event.ts, "not a settlement time"
            )
        due = event.ts // interval * interval
        if due <= mark.settled_at:
            raise RejectError(
                RejectReason.ALREADY_EXISTS, "ts", event.ts, "interval already settled"
            )
        settle_mark = self.mark_price(event.symbol)
        if settle_mark is None:
            raise RejectError(
                RejectReason.NOT_APPLICABLE, "mark_price", None, "mark stale or missing: retry"
            )
        p = {
            f: parse_units(getattr(funding, f), PREMIUM_SCALE, field=f)
            for f in ("interest", "clamp", "cap", "floor")
        }
        average = mark.premium.average()
        rate = funding_rate(
            average, interval_hours=funding.interval_hours, rate_scale=self._rate_scale, **p
        )
        samples = mark.premium.samples
        outputs: list[Output] = [
            FundingRateSet(
                seq=event.seq,
                id=event.id,
                symbol=event.symbol,
                rate=format_units(rate, self._rate_scale),
                average_premium=format_units(average, PREMIUM_SCALE),
                samples=samples,
                mark_price=format_units(
                    settle_mark, self.ledger.instruments[event.symbol].price_scale
                ),
            )
        ]
        outputs.extend(
            self.ledger.settle_funding(event.seq, event.id, event.symbol, rate, settle_mark)
        )
        mark.premium.reset()
        mark.last_rate = rate
        mark.settled_at = due
        return outputs

    # --- internals ------------------------------------------------------------------------

    def _add_mark(self, config: MarkConfigured) -> None:
        instrument = self.ledger.instruments[config.symbol]
        index = self._indexes[config.index]
        mark = _Mark(
            config,
            instrument.tick_size,
            10 ** (index.scale - instrument.price_scale),
            instrument.price_scale,
            self._rate_scale,
        )
        self._marks[config.symbol] = mark
        # symbol order, so that a restored engine (marks restored by symbol) emits in the same order
        insort(index.marks, mark, key=_mark_symbol)

    def _publish(self, index: _Index, now: int, event: Any) -> list[Output]:
        """Take the index just computed by ``index.live``; outputs for ``event`` (none if None):
        an IndexPrice when its price or status changed, then every mark on it that changed."""
        live = index.live
        price = live.price
        status = live.status
        changed = status is not index.status or price != index.result_price
        if price is not None and price != index.result_price:
            index.result_price = price
            index.result_text = _text(price, index.scale, index.power)
        index.status = status
        index.healthy = live.healthy
        index.fresh_until = None
        outputs: list[Output] = []
        if event is None:
            return outputs
        if changed:
            outputs.append(
                IndexPrice(
                    seq=event.seq,
                    id=event.id,
                    index=index.config.index,
                    price=index.result_text,
                    status=status,
                    sources=list(live.healthy),
                )
            )
        for mark in index.marks:
            self._update_mark(mark, index, now, event, outputs)
        return outputs

    def _update_mark(
        self, mark: _Mark, index: _Index, now: int, event: Any, outputs: list[Output]
    ) -> None:
        """Re-evaluate ``mark`` at ``now``; append a MarkPrice if its price or ``stale`` changed.

        The same arithmetic as :mod:`fengkong.market.mark` (``funding_adjusted_index``,
        ``mark_perpetual``, ``round_to_tick``), inlined for the per-tick path."""
        ix = index.result_price
        stale = index.status is not _OK or ix is None
        price = mark.mark
        if not stale:
            price2 = ix + mark.basis.average()  # mark_dated
            interval = mark.interval_ms
            if interval:
                rate = mark.last_rate
                if rate:  # funding_adjusted_index
                    one = mark.rate_one
                    price1 = nearest(
                        ix * (one + rate * ((now // interval + 1) * interval - now)), one
                    )
                else:
                    price1 = ix
                last = mark.last_trade
                if last is None:
                    last = price2
                # mark_perpetual: the median of (price1, price2, last)
                if price1 <= price2:
                    raw = price2 if price2 <= last else (last if price1 <= last else price1)
                else:
                    raw = price1 if price1 <= last else (last if price2 <= last else price2)
            else:
                raw = price2
            tick = mark.tick
            quotient, remainder = divmod(raw, tick)  # round_to_tick: nearest, ties to even
            twice = 2 * remainder
            if twice > tick or (twice == tick and quotient & 1):
                quotient += 1
            price = quotient * tick
            if price < tick:
                price = tick
        if price == mark.mark and stale == mark.stale:
            return
        mark.mark, mark.stale = price, stale
        if price is None:
            return
        outputs.append(
            MarkPrice(
                seq=event.seq,
                id=event.id,
                symbol=mark.symbol,
                price=_text(price // mark.to_index, mark.price_scale, mark.power),
                index_price=index.result_text,
                stale=stale,
            )
        )


def _mark_symbol(mark: _Mark) -> str:
    return mark.symbol
