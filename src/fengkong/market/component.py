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
    SourcePrice,
)
from fengkong.market.funding import (
    PREMIUM_SCALE,
    PremiumAverage,
    funding_rate,
    next_settlement,
    premium_index,
)
from fengkong.market.index import (
    WEIGHT_SCALE,
    IndexStatus,
    OutlierRule,
    SourceQuote,
    compute_index,
)
from fengkong.market.mark import (
    BasisAverage,
    funding_adjusted_index,
    mark_dated,
    mark_perpetual,
    round_to_tick,
)
from fengkong.model.enums import InstrumentKind
from fengkong.model.events import Fill, Output, RejectReason
from fengkong.model.fixed import FixedPointError, format_units, parse_units

__all__ = ["MarketComponent"]

_PERPETUALS = (InstrumentKind.LINEAR_PERPETUAL, InstrumentKind.INVERSE_PERPETUAL)
_HOUR_MS = 3_600_000
_SETTLEMENT_GRACE_MS = 60_000  # a FundingDue may arrive up to 1 min after the hour


def _number(text: str, scale: int, field: str, minimum: int | None = None) -> int:
    try:
        return parse_units(text, scale, field=field, minimum=minimum)
    except FixedPointError as error:
        raise RejectError(RejectReason.INVALID_NUMBER, field, text, error.reason) from None


class _Index:
    __slots__ = (
        "config", "fresh_until", "healthy", "limit", "marks", "quotes", "result_price",
        "result_text", "status", "weights",
    )  # fmt: skip

    def __init__(self, config: IndexConfigured) -> None:
        self.config = config
        self.weights = {
            c.source: parse_units(c.weight, WEIGHT_SCALE, field="weight")
            for c in config.constituents
        }
        self.limit = parse_units(config.limit, WEIGHT_SCALE, field="limit")
        self.quotes: dict[str, SourceQuote] = {}
        self.marks: list[str] = []
        self.result_price: int | None = None
        self.result_text: str | None = None  # result_price formatted at the index scale
        self.status = IndexStatus.STALE_NO_SOURCES
        self.healthy: tuple[str, ...] = ()
        self.fresh_until: int | None = None  # lazily computed by MarketComponent.mark_status


class _Mark:
    __slots__ = (
        "basis", "config", "interval_hours", "last_rate", "last_trade", "mark", "premium",
        "price_scale", "settled_at", "stale", "tick", "to_index",
    )  # fmt: skip

    def __init__(self, config: MarkConfigured, tick: int, to_index: int, price_scale: int) -> None:
        self.config = config
        self.price_scale = price_scale  # the instrument's
        self.interval_hours = config.funding.interval_hours if config.funding else None
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
    """Owns index/mark configuration, SourcePrice, BookTop and FundingDue (module docstring)."""

    name = "market"

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self._indexes: dict[str, _Index] = {}
        self._marks: dict[str, _Mark] = {}
        self._rate_scale = RATE_SCALE

    # --- protocol -------------------------------------------------------------------------

    def handlers(self) -> dict[type, Any]:
        return {
            IndexConfigured: self._on_index_configured,
            SourcePrice: self._on_source_price,
            MarkConfigured: self._on_mark_configured,
            BookTop: self._on_book_top,
            FundingDue: self._on_funding_due,
        }

    def observers(self) -> dict[type, Any]:
        return {Fill: self._on_fill}

    def canonical_state(self) -> dict[str, Any]:
        indexes = [
            [name, ix.config, sorted([q.source, q.price, q.time] for q in ix.quotes.values())]
            for name, ix in sorted(self._indexes.items())
        ]
        marks = [
            [
                symbol, m.config, m.basis.state(), m.premium.state() if m.premium else None,
                m.last_trade, m.last_rate, m.mark, m.stale, m.settled_at,
            ]
            for symbol, m in sorted(self._marks.items())
        ]  # fmt: skip
        return {"indexes": indexes, "marks": marks}

    def restore_state(self, data: dict[str, Any]) -> None:
        import msgspec

        self._indexes.clear()
        self._marks.clear()
        for name, config, quotes in data["indexes"]:
            index = _Index(msgspec.convert(config, IndexConfigured))
            for source, price, time in quotes:
                index.quotes[source] = SourceQuote(source, price, index.weights[source], time)
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
            self._recompute_index(index, max((q.time for q in index.quotes.values()), default=0))

    # --- queries --------------------------------------------------------------------------

    def mark_price(self, symbol: str) -> int | None:
        """The usable mark of ``symbol`` at its instrument price scale, or None (fail closed)."""
        mark = self._marks.get(symbol)
        if mark is None or mark.stale or mark.mark is None:
            return None
        return mark.mark // mark.to_index

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
            times = sorted((index.quotes[s].time for s in index.healthy), reverse=True)
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
            index.quotes = {
                s: q._replace(weight=index.weights[s])
                for s, q in previous.quotes.items()
                if s in index.weights
            }
        self._indexes[event.index] = index
        return self._recompute_index(index, event.ts, event)

    def _on_source_price(self, event: SourcePrice) -> list[Output]:
        index = self._indexes.get(event.symbol)
        if index is None:
            raise RejectError(
                RejectReason.UNKNOWN_INSTRUMENT, "symbol", event.symbol, "no such index"
            )
        weight = index.weights.get(event.source)
        if weight is None:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "source", event.source, "not a constituent"
            )
        price = _number(event.price, index.config.price_scale, "price", minimum=1)
        if event.time > event.ts:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "time", event.time, "after the event time"
            )
        previous = index.quotes.get(event.source)
        if previous is not None and event.time < previous.time:
            raise RejectError(
                RejectReason.INVALID_PARAMETER, "time", event.time, "older than the last quote"
            )
        index.quotes[event.source] = SourceQuote(event.source, price, weight, event.time)
        return self._recompute_index(index, event.ts, event)

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
        index.marks.append(event.symbol)
        return self._update_mark(event.symbol, event.ts, event)

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
        if index.status is not IndexStatus.OK or index.result_price is None:
            return self._update_mark(event.symbol, event.ts, event)
        price = index.result_price
        mark.basis.observe(event.ts, (bid + ask) // 2 - price)
        if mark.premium is not None:
            mark.premium.observe(event.ts, premium_index(impact_bid, impact_ask, price))
        return self._update_mark(event.symbol, event.ts, event)

    def _on_fill(self, event: Fill) -> None:
        mark = self._marks.get(event.symbol)
        if mark is not None:
            # the ledger has just parsed and validated this price text for the same instrument
            price = self.ledger.contract_math(event.symbol).parsed_prices.get(event.price)
            if price is None:
                instrument = self.ledger.instruments[event.symbol]
                price = parse_units(event.price, instrument.price_scale, field="price")
            mark.last_trade = price * mark.to_index

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
        scale = self._indexes[config.index].config.price_scale
        self._marks[config.symbol] = _Mark(
            config,
            instrument.tick_size,
            10 ** (scale - instrument.price_scale),
            instrument.price_scale,
        )

    def _recompute_index(self, index: _Index, now: int, event: Any = None) -> list[Output]:
        c = index.config
        result = compute_index(
            list(index.quotes.values()),
            now=now,
            stale_after_ms=c.stale_after_ms,
            rule=c.rule,
            limit=index.limit,
            min_sources=c.min_sources,
        )
        changed = result.price != index.result_price or result.status is not index.status
        if result.price is not None and result.price != index.result_price:
            index.result_price = result.price
            index.result_text = format_units(result.price, c.price_scale)
        index.status = result.status
        index.healthy = result.healthy
        index.fresh_until = None
        outputs: list[Output] = []
        if event is None:
            return outputs
        if changed:
            outputs.append(
                IndexPrice(
                    seq=event.seq,
                    id=event.id,
                    index=c.index,
                    price=index.result_text,
                    status=result.status,
                    sources=list(result.healthy),
                )
            )
        for symbol in index.marks:
            outputs.extend(self._update_mark(symbol, now, event))
        return outputs

    def _update_mark(self, symbol: str, now: int, event: Any) -> list[Output]:
        mark = self._marks[symbol]
        index = self._indexes[mark.config.index]
        stale = index.status is not IndexStatus.OK or index.result_price is None
        price = mark.mark
        if not stale:
            ix = index.result_price
            price2 = mark_dated(ix, mark.basis.average())
            hours = mark.interval_hours
            if hours is not None:
                price1 = funding_adjusted_index(
                    ix,
                    mark.last_rate,
                    self._rate_scale,
                    next_settlement(now, hours) - now,
                    hours * _HOUR_MS,
                )
                last = price2 if mark.last_trade is None else mark.last_trade
                raw = mark_perpetual(price1, price2, last)
            else:
                raw = price2
            price = max(round_to_tick(raw, mark.tick), mark.tick)
        if price == mark.mark and stale == mark.stale:
            return []
        mark.mark, mark.stale = price, stale
        if price is None:
            return []
        return [
            MarkPrice(
                seq=event.seq,
                id=event.id,
                symbol=symbol,
                price=format_units(price // mark.to_index, mark.price_scale),
                index_price=index.result_text,
                stale=stale,
            )
        ]
