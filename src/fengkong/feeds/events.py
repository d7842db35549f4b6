"""Published market-data rows as sequenced input events for the engine.

Two steps, so that several feeds can be merged into one log before it is numbered:

1. **Drafts.** Each converter turns rows into :class:`Draft` s (event time, id, kind, fields),
   in ascending time:

   * :func:`kline_source_prices`: one :class:`~fengkong.market.events.SourcePrice` per candle,
     the candle's **close** as the price of the named ``source`` for the index ``index``, at the
     candle's close time ``ts = time = open_time + interval_ms − 1`` (Binance's ``close_time``:
     the close is the last trade of the candle, known only once the candle ends; using the open
     time would put the price in the log before it existed). The price keeps the file's decimal
     text.
   * :func:`funding_payments`: one ledger :class:`~fengkong.model.events.FundingPayment` per row
     of a Binance funding-rate history, at the scheduled settlement hour
     (:func:`~fengkong.feeds.binance_funding.settlement_time`), with the mark the caller's
     ``mark_at(ts)`` gives (the history does not publish the mark it settled at).
   * :func:`observed_liquidations`: one :class:`~fengkong.market.events.ObservedLiquidation`
     per Binance ``!forceOrder@arr`` record, at its trade time.
   * :func:`option_marks`: one :class:`~fengkong.market.events.OptionMark` per row of a Deribit
     chain snapshot, at the valuation time the caller gives (the file records none; see
     :func:`fengkong.market.deribit.valuation_window`), the mark IV turned from percent into a
     fraction exactly (``"52.34"`` -> ``"0.5234"``).

   Ids are derived from the content (``kline:<source>:<index>:<open_time>``,
   ``funding:<symbol>:<settlement>``, ``forceorder:<venue>:<symbol>:<trade_time>:<n>``,
   ``option-mark:<instrument>:<ts>``), so re-converting the same row gives the same id and the
   engine drops a re-delivered row as a duplicate.
2. **Sequencing.** :func:`merge` interleaves draft streams by time (stable: equal times keep
   stream order); :func:`sequence` numbers drafts gap-free from ``start_seq`` and builds the
   events, refusing a time that goes backwards or a repeated id (:class:`DraftOrderError`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, NamedTuple

from fengkong.feeds.binance_force_orders import ForceOrder
from fengkong.feeds.binance_funding import FundingRecord, settlement_time
from fengkong.feeds.binance_klines import RawKline
from fengkong.feeds.deribit_options import DeribitOption
from fengkong.market.events import ObservedLiquidation, OptionMark, SourcePrice
from fengkong.model.events import Event, FundingPayment

__all__ = [
    "Draft",
    "DraftOrderError",
    "funding_payments",
    "kline_source_prices",
    "merge",
    "observed_liquidations",
    "option_marks",
    "sequence",
]


class Draft(NamedTuple):
    """An input event before the sequencer gives it its ``seq``."""

    ts: int
    id: str
    kind: type[Event]
    fields: dict[str, Any]


class DraftOrderError(ValueError):
    """A draft that cannot be sequenced; names the draft's id, the field and value, and why."""

    def __init__(self, draft_id: str, field: str, value: object, reason: str) -> None:
        self.draft_id, self.field, self.value = draft_id, field, value
        super().__init__(f"{draft_id}: {field}={value!r}: {reason}")


def kline_source_prices(
    rows: Iterable[RawKline], *, source: str, index: str, interval_ms: int
) -> Iterator[Draft]:
    """One SourcePrice per candle: the close, at the close time (module docstring)."""
    if interval_ms < 1:
        raise ValueError(f"interval_ms={interval_ms!r}: must be >= 1")
    for row in rows:
        close_time = row.open_time_ms + interval_ms - 1
        yield Draft(
            close_time,
            f"kline:{source}:{index}:{row.open_time_ms}",
            SourcePrice,
            {"source": source, "symbol": index, "price": row.close, "time": close_time},
        )


def funding_payments(
    records: Iterable[FundingRecord], *, symbol: str, mark_at: Callable[[int], str]
) -> Iterator[Draft]:
    """One FundingPayment per settlement: the published rate, ``mark_at(settlement)``."""
    for record in records:
        at = settlement_time(record.calc_time)
        yield Draft(
            at,
            f"funding:{symbol}:{at}",
            FundingPayment,
            {"symbol": symbol, "rate": record.rate, "mark_price": mark_at(at)},
        )


def observed_liquidations(records: Iterable[ForceOrder], *, venue: str) -> Iterator[Draft]:
    """One ObservedLiquidation per forced order, at its trade time; ``n`` (the record's
    position in the file) keeps two records of one symbol in the same millisecond apart."""
    for n, record in enumerate(records):
        yield Draft(
            record.trade_time,
            f"forceorder:{venue}:{record.symbol}:{record.trade_time}:{n}",
            ObservedLiquidation,
            {
                "venue": venue,
                "symbol": record.symbol,
                "side": record.side,
                "qty": record.qty,
                "price": record.price,
                "average_price": record.average_price,
                "filled_qty": record.filled_qty,
            },
        )


def option_marks(rows: Iterable[DeribitOption], *, at: int) -> Iterator[Draft]:
    """One OptionMark per chain row at time ``at``: underlying price and mark IV (fraction)."""
    for row in rows:
        yield Draft(
            at,
            f"option-mark:{row.instrument_name}:{at}",
            OptionMark,
            {
                "symbol": row.instrument_name,
                "underlying_price": row.values["underlying_price"],
                "mark_iv": _percent_to_fraction(row.values["mark_iv"]),
            },
        )


def _percent_to_fraction(text: str) -> str:
    """``"52.34"`` -> ``"0.5234"``, exactly (a decimal shift, no float)."""
    value = Decimal(text).scaleb(-2)
    return format(value.normalize(), "f") if value else "0"


def merge(*streams: Iterable[Draft]) -> Iterator[Draft]:
    """Drafts of all ``streams`` (each ascending in time) in time order, stable."""
    return heapq.merge(*streams, key=lambda draft: draft.ts)


def sequence(drafts: Iterable[Draft], start_seq: int = 1) -> Iterator[Event]:
    """Events with ``seq`` = ``start_seq``, ``start_seq + 1``, … in draft order."""
    seq = start_seq
    last_ts: int | None = None
    seen: set[str] = set()
    for draft in drafts:
        if last_ts is not None and draft.ts < last_ts:
            raise DraftOrderError(draft.id, "ts", draft.ts, f"before the previous {last_ts}")
        if draft.id in seen:
            raise DraftOrderError(draft.id, "id", draft.id, "already used")
        seen.add(draft.id)
        last_ts = draft.ts
        yield draft.kind(seq=seq, id=draft.id, ts=draft.ts, **draft.fields)
        seq += 1
