"""Kline and funding rows as sequenced events, on the real 1-minute BTCUSDT perpetual crash files
(../shared/data/btcusdt-perp-1m-*.csv, Binance data.binance.vision klines) and the Binance
BTCUSDT funding history: codec round-trip, gap-free sequence, marks through the engine."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

import msgspec
import pytest

from fengkong.engine import Engine
from fengkong.feeds.binance_funding import iter_funding, settlement_time
from fengkong.feeds.binance_klines import RawKline, iter_klines
from fengkong.feeds.events import (
    Draft,
    DraftOrderError,
    funding_payments,
    kline_source_prices,
    merge,
    sequence,
)
from fengkong.ledger.ledger import Ledger
from fengkong.market.component import MarketComponent
from fengkong.market.events import (
    IndexConfigured,
    IndexConstituent,
    MarkConfigured,
    MarkPrice,
    PerpetualFunding,
    SourcePrice,
)
from fengkong.model.events import (
    FundingPayment,
    FundingSettled,
    Rejected,
    json_event_decoder,
    msgpack_event_decoder,
)
from tests.factories import ASSETS, Log

MINUTE = 60_000
CRASHES = (
    "btcusdt-perp-1m-2020-03-12-black-thursday.csv",
    "btcusdt-perp-1m-2021-05-19-crash.csv",
    "btcusdt-perp-1m-2022-11-08-ftx.csv",
    "btcusdt-perp-1m-2025-10-10-cascade.csv",
)
TICK = Decimal("0.1")  # BTCUSDT-PERP in tests.factories


def _market_log(start_ts: int) -> Log:
    """BTCUSDT-PERP marked off a one-source index 'BTCUSDT' fed by the perpetual's closes."""
    log = Log(ts=start_ts - 10 * MINUTE)
    log.assets()
    log.listing("BTCUSDT-PERP")
    log.make(
        IndexConfigured, index="BTCUSDT", price_scale=2,
        constituents=[IndexConstituent("binance-perp", "1")], rule="cap", limit="0.05",
        stale_after_ms=2 * MINUTE, min_sources=1,
    )  # fmt: skip
    log.make(MarkConfigured, symbol="BTCUSDT-PERP", index="BTCUSDT", funding=PerpetualFunding())
    return log


def _engine() -> Engine:
    ledger = Ledger()
    return Engine([ledger, MarketComponent(ledger)])


def _on_tick(close: str) -> Decimal:
    return Decimal(close).quantize(TICK, ROUND_HALF_EVEN)


@pytest.mark.parametrize("name", CRASHES)
def test_crash_klines_become_gap_free_events_that_round_trip_and_mark_every_close(
    shared_data, name
):
    rows = list(iter_klines(shared_data / name))
    log = _market_log(rows[0].open_time_ms)
    drafts = kline_source_prices(rows, source="binance-perp", index="BTCUSDT", interval_ms=MINUTE)
    events = list(sequence(drafts, start_seq=log.seq))

    assert [e.seq for e in events] == list(range(log.seq, log.seq + len(rows)))
    assert len({e.id for e in events}) == len(rows)
    for event, row in zip(events, rows, strict=True):
        assert isinstance(event, SourcePrice)
        assert event.ts == event.time == row.open_time_ms + 59_999  # Binance close_time
        assert event.price == row.close
    json_lines = b"\n".join(msgspec.json.encode(e) for e in events)
    decoder = json_event_decoder()
    assert [decoder.decode(line) for line in json_lines.split(b"\n")] == events
    packed = msgpack_event_decoder()
    assert [packed.decode(msgspec.msgpack.encode(e)) for e in events] == events

    engine = _engine()
    outputs = [o for e in [*log.events, *events] for o in engine.process(e)]
    assert not [o for o in outputs if isinstance(o, Rejected)]
    marks = [o for o in outputs if isinstance(o, MarkPrice)]
    # No book and no fill: the perpetual's mark is the index (the close) on the 0.1 tick;
    # a MarkPrice is emitted whenever the rounded close changes.
    expected = [_on_tick(rows[0].close)]
    for row in rows[1:]:
        if _on_tick(row.close) != expected[-1]:
            expected.append(_on_tick(row.close))
    assert [Decimal(m.price) for m in marks] == expected
    assert not any(m.stale for m in marks)
    lowest = min(rows, key=lambda r: Decimal(r.close))
    assert min(Decimal(m.price) for m in marks) == _on_tick(lowest.close)


def test_black_thursday_funding_settlements_merge_with_klines_and_settle_at_the_close(
    shared_data,
):
    """2020-03-12 16:00 and 2020-03-13 00:00 UTC fall inside the window; Binance published
    −0.00015149 and −0.00016073 (shorts pay). Mark: the close of the minute ending then."""
    rows = list(iter_klines(shared_data / CRASHES[0]))
    closes = {r.open_time_ms + MINUTE: str(_on_tick(r.close)) for r in rows}
    first, last = rows[0].open_time_ms, rows[-1].open_time_ms + MINUTE
    records = [
        r
        for r in iter_funding(shared_data / "binance-um-funding-btcusdt.csv")
        if first < settlement_time(r.calc_time) <= last
    ]
    assert [r.rate for r in records] == ["-0.00015149", "-0.00016073"]

    log = _market_log(first)
    for account in ("long", "short"):
        log.account(account)
        log.deposit(account, "USDT", "100000")
    log.fill("BTCUSDT-PERP", "7900", "1", buyer="long", seller="short")
    stream = merge(
        kline_source_prices(rows, source="binance-perp", index="BTCUSDT", interval_ms=MINUTE),
        funding_payments(records, symbol="BTCUSDT-PERP", mark_at=closes.__getitem__),
    )
    events = list(sequence(stream, start_seq=log.seq))
    assert len(events) == len(rows) + 2
    payments = [e for e in events if isinstance(e, FundingPayment)]
    for payment in payments:  # right after the candle that closed at 15:59:59.999 / 23:59:59.999
        before = events[events.index(payment) - 1]
        assert before.ts == payment.ts - 1 and isinstance(before, SourcePrice)
        assert payment.id == f"funding:BTCUSDT-PERP:{payment.ts}"

    engine = _engine()
    outputs = [o for e in [*log.events, *events] for o in engine.process(e)]
    assert not [o for o in outputs if isinstance(o, Rejected)]
    settled = [o for o in outputs if isinstance(o, FundingSettled)]
    assert len(settled) == 2
    unit = Decimal(1).scaleb(-ASSETS["USDT"])
    for output, payment in zip(settled, payments, strict=True):
        owed = abs(Decimal(payment.rate) * Decimal(payment.mark_price))  # 1 BTC short pays
        assert output.paid == int(owed.quantize(unit, ROUND_CEILING) / unit)
        assert output.paid - output.received == output.dust


def test_sequencing_refuses_time_going_backwards_and_repeated_ids():
    row = RawKline(1_000 * MINUTE, "1", "1", "1", "1", "0")
    drafts = list(kline_source_prices([row], source="s", index="I", interval_ms=MINUTE))
    earlier = Draft(drafts[0].ts - 1, "other", SourcePrice, drafts[0].fields)
    with pytest.raises(DraftOrderError, match="ts="):
        list(sequence([*drafts, earlier]))
    with pytest.raises(DraftOrderError, match="already used"):
        list(sequence([*drafts, *drafts]))
    with pytest.raises(ValueError, match="interval_ms"):
        list(kline_source_prices([row], source="s", index="I", interval_ms=0))
