"""The market component in an engine with the real ledger: index robustness, marks, funding."""

from __future__ import annotations

from fengkong.engine import Engine
from fengkong.ledger.ledger import Ledger
from fengkong.market.component import MarketComponent
from fengkong.market.events import (
    BookTop,
    FundingDue,
    FundingRateSet,
    IndexConfigured,
    IndexConstituent,
    IndexPrice,
    MarkConfigured,
    MarkPrice,
    PerpetualFunding,
    SourcePrice,
)
from fengkong.market.index import IndexStatus
from fengkong.model.events import FundingSettled, Rejected
from fengkong.model.fixed import format_units, parse_units
from tests.factories import exchange, run

HONEST = ("h1", "h2", "h3")


def _engine() -> Engine:
    ledger = Ledger()
    return Engine([ledger, MarketComponent(ledger)])


def _configure(log, rule="exclude", limit="0.05", min_sources=3):
    log.make(
        IndexConfigured,
        index="BTCUSDT",
        price_scale=2,
        constituents=[IndexConstituent(s, "0.2") for s in (*HONEST, "frozen", "drift", "spike")],
        rule=rule,
        limit=limit,
        stale_after_ms=10_000,
        min_sources=min_sources,
    )


def _scenario(rule: str, limit: str):
    """60 s at 1 s steps: three honest sources around a slowly rising price; 'frozen' stops
    updating at 9 s; 'drift' walks linearly to +20% by 60 s; 'spike' is +50% for one tick.
    Returns, for every IndexPrice, (output, second, truth, latest quote of every source)."""
    log = exchange("BTCUSDT-PERP")
    _configure(log, rule, limit)
    engine, _ = run(log.events, _engine())
    start = log.ts
    seen = []
    latest: dict[str, int] = {}
    for second in range(60):
        now = start + 1000 * (second + 1)
        truth = 6_000_000 + 500 * second  # 60000.00 rising 5 USDT / s, in cents
        quotes = {s: truth + (i - 1) * 300 for i, s in enumerate(HONEST)}
        if second < 10:
            quotes["frozen"] = truth
        quotes["drift"] = truth + truth * second // 300  # +20% at 60 s
        quotes["spike"] = truth * 3 // 2 if second == 30 else truth + 100
        for source, price in quotes.items():
            latest[source] = price
            event = log.make(
                SourcePrice,
                ts=now,
                source=source,
                symbol="BTCUSDT",
                price=format_units(price, 2),
                time=now,
            )
            for output in engine.process(event):
                if isinstance(output, IndexPrice):
                    seen.append((output, second, truth, dict(latest)))
    return engine, seen


def _check_robust(seen, excludes: bool) -> None:
    """Exclude rule (5%): the drifting source counts while within 5% (weight 0.2: at most +1%
    on the index) and is dropped beyond; from 17 s the index stays within 0.2% of the truth
    (honest spread plus the frozen source's lag), spike or not. Cap rule (1%): the outliers
    keep their weight (0.2 each) at no more than +1% each, so within 0.5% throughout."""
    for output, second, truth, latest in seen:
        if second == 0:  # warm-up: stale until three sources have quoted
            continue
        assert output.status is IndexStatus.OK
        price = parse_units(output.price, 2, field="price")
        healthy = [latest[s] for s in output.sources]
        assert min(healthy) <= price <= max(healthy), output
        bound = (0.002 if second >= 17 else 0.011) if excludes else 0.005
        assert abs(price - truth) <= truth * bound, (second, price, truth)
        if second >= 20:  # last update at 9 s, staleness 10 s
            assert "frozen" not in output.sources


def test_index_survives_frozen_drifting_and_spiking_sources_old_rule():
    """Exclude rule, 5%: after every update the index lies within the range of the sources it
    reports healthy, never takes the spike, drops the drifting source beyond 5% and the frozen
    one after 10 s, and stays within 1.2% of the true price."""
    _, seen = _scenario("exclude", "0.05")
    assert len(seen) > 200
    _check_robust(seen, excludes=True)


def test_index_with_cap_rule_stays_within_the_cap_of_the_healthy_range():
    """Cap rule, 1% (Binance BTC/ETH): outliers keep their weight but are capped at the
    median ± 1%, so the index stays within the healthy range and within 1.2% of the truth."""
    _, seen = _scenario("cap", "0.01")
    _check_robust(seen, excludes=False)


def test_too_few_healthy_sources_mark_the_index_and_the_mark_stale_and_funding_refused():
    log = exchange("BTCUSDT-PERP")
    _configure(log, min_sources=3)
    log.make(
        MarkConfigured,
        symbol="BTCUSDT-PERP",
        index="BTCUSDT",
        basis_window=30,
        basis_sample_ms=1000,
        funding=PerpetualFunding(),
    )
    for source in HONEST:
        log.make(SourcePrice, source=source, symbol="BTCUSDT", price="60000", time=log.ts + 1000)
    engine, outputs = run(log.events, _engine())
    marks = [o for o in outputs if isinstance(o, MarkPrice)]
    assert marks[-1].price == "60000" and not marks[-1].stale
    # only h1 keeps quoting; 11 s later h2 and h3 are stale: 1 healthy source < quorum 3
    later = log.make(
        SourcePrice,
        source="h1",
        symbol="BTCUSDT",
        price="60001",
        time=log.ts + 11_000,
        ts=log.ts + 11_000,
    )
    stale_outputs = engine.process(later)
    index = next(o for o in stale_outputs if isinstance(o, IndexPrice))
    assert index.status is IndexStatus.STALE_TOO_FEW_SOURCES
    mark = next(o for o in stale_outputs if isinstance(o, MarkPrice))
    assert mark.stale and mark.price == "60000"
    assert engine.component("market").mark_price("BTCUSDT-PERP") is None
    due = log.make(FundingDue, symbol="BTCUSDT-PERP", ts=(log.ts // 28_800_000 + 1) * 28_800_000)
    refused = engine.process(due)
    assert isinstance(refused[0], Rejected) and refused[0].field == "mark_price"


def test_funding_settles_every_position_at_the_mark_and_conserves_money():
    """Premium sampled from BookTop (impact bid 0.1% over the index) for one interval:
    P = 0.1%, I = 0.01% -> F = 0.05% (clamp); long pays short 0.05% of notional at mark."""
    log = exchange(
        "BTCUSDT-PERP", accounts={"alice": {"USDT": "100000"}, "bob": {"USDT": "100000"}}
    )
    _configure(log, min_sources=1)
    log.make(MarkConfigured, symbol="BTCUSDT-PERP", index="BTCUSDT", funding=PerpetualFunding())
    log.fill("BTCUSDT-PERP", "60000", "1", buyer="alice", seller="bob")
    engine, _ = run(log.events, _engine())
    settlement = (log.ts // 28_800_000 + 1) * 28_800_000
    for step in range(10):
        ts = settlement - 50_000 + 5_000 * step
        for event in (
            log.make(SourcePrice, ts=ts, source="h1", symbol="BTCUSDT", price="60000", time=ts),
            log.make(
                BookTop,
                ts=ts,
                symbol="BTCUSDT-PERP",
                bid="60059.9",
                ask="60060.1",
                impact_bid="60060",
                impact_ask="60070",
            ),
        ):
            engine.process(event)
    ledger = engine.component("ledger")
    before = sum(b.free + b.locked for a in ledger.accounts.values() for b in a.balances.values())
    outputs = engine.process(log.make(FundingDue, ts=settlement, symbol="BTCUSDT-PERP"))
    rate = next(o for o in outputs if isinstance(o, FundingRateSet))
    assert rate.rate == "0.0005" and rate.samples == 10
    settled = next(o for o in outputs if isinstance(o, FundingSettled))
    assert settled.positions == 2
    notional = parse_units(rate.mark_price, 8, field="mark") * 1  # 1 BTC at mark, USDT units
    assert settled.paid == notional * 5 // 10_000
    after = sum(b.free + b.locked for a in ledger.accounts.values() for b in a.balances.values())
    assert after == before
    again = engine.process(log.make(FundingDue, ts=settlement + 1000, symbol="BTCUSDT-PERP"))
    assert isinstance(again[0], Rejected)


def test_snapshot_restores_the_market_state_with_the_same_hash():
    engine, _ = _scenario("cap", "0.01")
    restored = Engine.restore(engine.snapshot(), [Ledger(), MarketComponent(Ledger())])
    assert restored.state_hash() == engine.state_hash()
