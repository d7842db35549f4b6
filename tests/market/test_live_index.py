"""The incremental per-tick path against the reference pure functions, on long random streams.

``LiveIndex`` (sorted fresh prices, running sums, expiry bound) must give exactly what
``compute_index`` gives over the latest quotes at the same time; the engine component, which
uses it and inlines the mark arithmetic, must emit exactly the IndexPrice / MarkPrice outputs that
the reference functions (``compute_index``, ``funding_adjusted_index``, ``mark_perpetual``,
``round_to_tick``, ``BasisAverage``) give, event by event; its fast price parse and text must
agree with ``parse_units`` / ``format_units``.
"""

from __future__ import annotations

import random

import pytest

from fengkong.engine import Engine
from fengkong.ledger.ledger import Ledger
from fengkong.market.component import MarketComponent, _price_units, _text
from fengkong.market.events import (
    BookTop,
    IndexConfigured,
    IndexConstituent,
    IndexPrice,
    MarkConfigured,
    MarkPrice,
    PerpetualFunding,
    SourcePrice,
)
from fengkong.market.funding import next_settlement
from fengkong.market.index import (
    WEIGHT_SCALE,
    IndexStatus,
    LiveIndex,
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
from fengkong.model.events import Fill, Rejected
from fengkong.model.fixed import FixedPointError, format_units, parse_units
from tests.factories import exchange, run

LIMITS = (0, 10_000, 100_000, 1_000_000, 5_000_000, 150_000_000)  # 0, 0.01%, 0.1%, 1%, 5%, 150%


@pytest.mark.parametrize("seed", range(12))
def test_live_index_equals_compute_index_after_every_update(seed):
    rng = random.Random(seed)
    sources = [f"s{i}" for i in rng.sample(range(20), rng.randint(1, 8))]
    weights = {s: rng.choice([1, 25_000_000, 100_000_000, 300_000_000]) for s in sources}
    params = dict(
        stale_after_ms=rng.choice([50, 300, 1_000]),
        rule=rng.choice(list(OutlierRule)),
        limit=rng.choice(LIMITS),
        min_sources=rng.randint(1, 4),
    )
    live = LiveIndex(weights, **params)
    latest: dict[str, SourceQuote] = {}
    now = 1_000_000
    level = 6_000_000
    for step in range(4_000):
        now += rng.choice([0, 1, 10, 40, 100, 400]) if rng.random() > 0.01 else -rng.randint(1, 900)
        source = rng.choice(sources)
        level += rng.randint(-50, 50)
        price = max(1, level + rng.randint(-60, 60))
        if rng.random() < 0.05:
            price = price * rng.choice([50, 97, 99, 101, 103, 200]) // 100
        if rng.random() < 0.2 and source in latest:
            price = latest[source].price  # unchanged price
        previous = latest[source].time if source in latest else -(10**9)
        time = max(previous, now - rng.choice([0, 0, 5, 100, 2_000]))
        if rng.random() < 0.01:  # the source's own clock steps back (the component refuses it)
            time = now - rng.choice([0, 5, 100, 2_000])
        latest[source] = SourceQuote(source, price, weights[source], time)
        live.update(live.slot[source], price, time, now)
        expected = compute_index(list(latest.values()), now=now, **params)
        assert (live.price, live.status, live.healthy) == tuple(expected), (step, now)
        if step % 500 == 0:  # a rebuild from the quotes (restore) gives the same
            again = LiveIndex(weights, **params)
            for quote in live.quotes():
                again.load(quote.source, quote.price, quote.time)
            again.evaluate(now)
            assert (again.price, again.status, again.healthy) == tuple(expected)


def test_live_index_refuses_a_weight_that_compute_index_would_ignore():
    with pytest.raises(ValueError):
        LiveIndex({"a": 0}, stale_after_ms=1, rule=OutlierRule.CAP, limit=0, min_sources=1)


class _Reference:
    """The component's index and mark rules written with the reference pure functions only."""

    def __init__(self, config, marks, ledger):
        self.config = config
        self.weights = {
            c.source: parse_units(c.weight, WEIGHT_SCALE, field="w") for c in config.constituents
        }
        self.limit = parse_units(config.limit, WEIGHT_SCALE, field="limit")
        self.quotes: dict[str, SourceQuote] = {}
        self.price = self.text = None
        self.status = IndexStatus.STALE_NO_SOURCES
        self.marks = {}
        for symbol, funding in marks:
            instrument = ledger.instruments[symbol]
            self.marks[symbol] = dict(
                funding=funding,
                scale=instrument.price_scale,
                to_index=10 ** (config.price_scale - instrument.price_scale),
                tick=instrument.tick_size,
                basis=BasisAverage(30, 1_000),
                last=None,
                mark=None,
                stale=True,
            )

    def source_price(self, event) -> list:
        self.quotes[event.source] = SourceQuote(
            event.source,
            parse_units(event.price, self.config.price_scale, field="price"),
            self.weights[event.source],
            event.time,
        )
        result = compute_index(
            list(self.quotes.values()),
            now=event.ts,
            stale_after_ms=self.config.stale_after_ms,
            rule=self.config.rule,
            limit=self.limit,
            min_sources=self.config.min_sources,
        )
        out = []
        changed = result.price != self.price or result.status is not self.status
        if result.price is not None and result.price != self.price:
            self.price = result.price
            self.text = format_units(result.price, self.config.price_scale)
        self.status = result.status
        if changed:
            out.append((IndexPrice, self.text, result.status, list(result.healthy)))
        for symbol in sorted(self.marks):
            out.extend(self.mark(symbol, event.ts))
        return out

    def book_top(self, event) -> list:
        m = self.marks[event.symbol]
        if self.status is IndexStatus.OK and self.price is not None:
            scale = self.config.price_scale
            bid = parse_units(event.bid, scale, field="bid")
            ask = parse_units(event.ask, scale, field="ask")
            m["basis"].observe(event.ts, (bid + ask) // 2 - self.price)
        return self.mark(event.symbol, event.ts)

    def mark(self, symbol: str, now: int) -> list:
        m = self.marks[symbol]
        stale = self.status is not IndexStatus.OK or self.price is None
        price = m["mark"]
        if not stale:
            price2 = mark_dated(self.price, m["basis"].average())
            if m["funding"]:
                hours = m["funding"].interval_hours
                price1 = funding_adjusted_index(
                    self.price, 0, 8, next_settlement(now, hours) - now, hours * 3_600_000
                )
                raw = mark_perpetual(price1, price2, price2 if m["last"] is None else m["last"])
            else:
                raw = price2
            tick = m["tick"] * m["to_index"]
            price = max(round_to_tick(raw, tick), tick)
        if price == m["mark"] and stale == m["stale"]:
            return []
        m["mark"], m["stale"] = price, stale
        if price is None:
            return []
        text = format_units(price // m["to_index"], m["scale"])
        return [(MarkPrice, symbol, text, self.text, stale)]


def _observed(outputs) -> list:
    seen = []
    for o in outputs:
        if isinstance(o, IndexPrice):
            seen.append((IndexPrice, o.price, o.status, o.sources))
        elif isinstance(o, MarkPrice):
            seen.append((MarkPrice, o.symbol, o.price, o.index_price, o.stale))
    return seen


@pytest.mark.parametrize("seed", range(6))
def test_engine_outputs_equal_the_reference_functions_on_a_long_random_stream(seed):
    rng = random.Random(100 + seed)
    log = exchange(
        "BTCUSDT-PERP",
        "BTCUSDT",
        accounts={"alice": {"USDT": "1000000000"}, "bob": {"USDT": "1000000000"}},
    )
    sources = ("binance", "okx", "bybit", "coinbase", "kraken", "bitstamp")
    config = log.make(
        IndexConfigured,
        index="BTCUSDT",
        price_scale=2,
        constituents=[IndexConstituent(s, rng.choice(["1", "0.5", "2"])) for s in sources],
        rule=rng.choice(["cap", "exclude"]),
        limit=rng.choice(["0", "0.0005", "0.01", "1.5"]),
        stale_after_ms=rng.choice([500, 2_000, 10_000]),
        min_sources=rng.randint(1, 4),
    )
    funding = PerpetualFunding()
    log.make(MarkConfigured, symbol="BTCUSDT-PERP", index="BTCUSDT", funding=funding)
    log.make(MarkConfigured, symbol="BTCUSDT", index="BTCUSDT")
    ledger = Ledger()
    engine, _ = run(log.events, Engine([ledger, MarketComponent(ledger)]))
    reference = _Reference(config, [("BTCUSDT-PERP", funding), ("BTCUSDT", None)], ledger)
    ts = log.ts
    level = 6_000_000
    times: dict[str, int] = {}
    compared = 0
    for step in range(5_000):
        ts += (
            rng.choice([0, 1, 50, 100, 300, 900]) if rng.random() > 0.01 else -rng.randint(1, 3_000)
        )
        r = rng.random()
        if r < 0.85:
            source = rng.choice(sources[: rng.choice([2, 6, 6])])  # some sources go quiet
            level += rng.randint(-100, 100)
            price = max(1, level + rng.randint(-300, 300))
            if rng.random() < 0.05:
                price = price * rng.choice([80, 99, 101, 150]) // 100
            time = max(times.get(source, 0), ts - rng.choice([0, 0, 20, 400, 3_000]))
            if time > ts:  # event time went back below this source's last quote: skip it
                continue
            times[source] = time
            text = format_units(price, 2)
            if rng.random() < 0.05:
                text += ".0" if "." not in text else "0"
            event = log.make(
                SourcePrice, ts=ts, source=source, symbol="BTCUSDT", price=text, time=time
            )
            expected = reference.source_price(event)
        elif r < 0.95:
            symbol = rng.choice(["BTCUSDT-PERP", "BTCUSDT"])
            mid = level + rng.randint(-5_000, 5_000)
            event = log.make(
                BookTop,
                ts=ts,
                symbol=symbol,
                bid=format_units(mid - 10, 2),
                ask=format_units(mid + 10, 2),
                impact_bid=format_units(mid - 50, 2),
                impact_ask=format_units(mid + 50, 2),
            )
            expected = reference.book_top(event)
        else:
            price = (level + rng.randint(-3_000, 3_000)) // 10 * 10
            event = log.make(
                Fill,
                ts=ts,
                symbol="BTCUSDT-PERP",
                price=format_units(price, 2),
                qty="0.001",
                buyer="alice",
                seller="bob",
                taker_side="buy",
                maker_fee_rate="0",
                taker_fee_rate="0",
            )
            reference.marks["BTCUSDT-PERP"]["last"] = price
            expected = []
        outputs = engine.process(event)
        assert not any(isinstance(o, Rejected) for o in outputs), (step, outputs)
        assert _observed(outputs) == expected, (step, event)
        compared += len(expected)
    assert compared > 3_000


def test_a_restored_engine_goes_on_emitting_what_the_original_emits():
    """Marks on an index are kept in symbol order and rebuilt on restore (they were lost)."""
    log = exchange("BTCUSDT-PERP", "BTCUSDT")
    log.make(
        IndexConfigured,
        index="BTCUSDT",
        price_scale=2,
        constituents=[IndexConstituent(s, "1") for s in ("a", "b", "c")],
        rule="cap",
        limit="0.01",
        stale_after_ms=10_000,
        min_sources=1,
    )
    log.make(MarkConfigured, symbol="BTCUSDT-PERP", index="BTCUSDT", funding=PerpetualFunding())
    log.make(MarkConfigured, symbol="BTCUSDT", index="BTCUSDT")
    log.make(SourcePrice, source="a", symbol="BTCUSDT", price="100", time=log.ts + 1000)
    ledger = Ledger()
    engine, _ = run(log.events, Engine([ledger, MarketComponent(ledger)]))
    restored_ledger = Ledger()
    restored = Engine.restore(
        engine.snapshot(), [restored_ledger, MarketComponent(restored_ledger)]
    )
    rng = random.Random(5)
    for _ in range(200):
        source = rng.choice("abc")
        event = log.make(
            SourcePrice,
            source=source,
            symbol="BTCUSDT",
            price=format_units(10_000 + rng.randint(-500, 500), 2),
            time=log.ts + 1000,
        )
        expected = engine.process(event)
        assert restored.process(event) == expected
        assert [o.symbol for o in expected if isinstance(o, MarkPrice)] in (
            [],
            ["BTCUSDT"],
            ["BTCUSDT-PERP"],
            ["BTCUSDT", "BTCUSDT-PERP"],
        )
    assert restored.state_hash() == engine.state_hash()


EDGE_TEXTS = (
    "1", "10", "60000", "60000.5", "60000.50", "60000.500", "60000.123", "0", "0.5", "0.01",
    "00", "060000", "-1", "-0", "1e5", "", ".5", "5.", "1.2.3", "１２", "²", "1_000", " 1",
    "1 ", "+1", "99999999999999999999999999999999999999999", "9" * 40, "9" * 38 + ".5",
)  # fmt: skip


def test_fast_price_parse_equals_parse_units():
    rng = random.Random(3)
    texts: list = [*EDGE_TEXTS, 60000, 60000.5, None, b"60000"]
    for _ in range(20_000):
        whole = str(rng.randint(0, 10 ** rng.randint(0, 12)))
        fraction = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 5)))
        texts.append(f"{whole}.{fraction}" if fraction or rng.random() < 0.1 else whole)
    for text in texts:
        for scale in (0, 1, 2, 3, 8):
            try:
                expected = parse_units(text, scale, field="price", minimum=1)
            except FixedPointError as error:
                expected = error.reason
            try:
                got = _price_units(text, scale, 10**scale)
            except Exception as error:  # RejectError carries parse_units' reason as message
                got = error.message
            assert got == expected, (text, scale)


def test_fast_text_equals_format_units():
    rng = random.Random(4)
    for _ in range(50_000):
        scale = rng.randint(0, 12)
        units = rng.choice(
            [rng.randint(0, 10 ** rng.randint(0, 20)), 10**scale * rng.randint(0, 10**6)]
        )
        if rng.random() < 0.01:
            units = -units
        assert _text(units, scale, 10**scale) == format_units(units, scale), (units, scale)
