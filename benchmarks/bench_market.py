"""Market benchmarks: per-tick index + mark latency, vectorized Greeks, IV solves per second,
volatility surface (SVI) fit and chain-wide mark IV + price.

Run: ``.venv/bin/python benchmarks/bench_market.py`` (``--smoke`` for a few-second run).
Prints p50 / p99 / p999 latencies and throughput; numbers go to docs/benchmarks.md.
``--repeat K`` runs each per-tick measure K times (fresh engine each time) and prints each run.

Deterministic per-tick cost, independent of machine load (same workload as the timed run;
1,000 warm-up ticks, then N ticks processed inside ``functools.reduce``)::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no \
        --toggle-collect=functools_reduce python benchmarks/bench_market.py --callgrind N

``I refs`` of ``--callgrind 20000`` minus ``--callgrind 0`` (the baseline), over 20,000, is the
instruction count per tick. ``--opcodes N`` counts the bytecode instructions CPython executes
per tick, by function (``sys.settrace`` with ``f_trace_opcodes``). ``--degraded`` counts the
workload with one source stale and one capped on every tick instead.
"""

from __future__ import annotations

import argparse
import functools
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository's tests.factories importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.factories import exchange, run

from fengkong.engine import Engine
from fengkong.ledger.ledger import Ledger
from fengkong.market.component import MarketComponent
from fengkong.market.events import (
    IndexConfigured,
    IndexConstituent,
    MarkConfigured,
    PerpetualFunding,
    SourcePrice,
)
from fengkong.market.options import black76_vec, implied_vol, implied_vol_vec
from fengkong.market.surface import VolSurface
from fengkong.market.svi import SviParams

SOURCES = ("binance", "okx", "bybit", "coinbase", "kraken", "bitstamp")


def _percentiles(samples_ns: list[int]) -> str:
    a = np.array(samples_ns) / 1000.0
    p50, p99, p999 = np.percentile(a, [50, 99, 99.9])
    return f"p50 {p50:.1f} µs  p99 {p99:.1f} µs  p999 {p999:.1f} µs"


def _tick_workload(n: int, degraded: bool = False) -> tuple[Engine, list[SourcePrice]]:
    """A configured engine and ``n`` SourcePrice ticks (6 sources round robin, 100 ms apart).

    ``degraded``: the last source quotes once and then goes quiet (stale after 10 s), and the
    one before it always quotes 3 % high (capped at 1 % on every tick)."""
    log = exchange("BTCUSDT-PERP")
    log.make(
        IndexConfigured, index="BTCUSDT", price_scale=2,
        constituents=[IndexConstituent(s, "1") for s in SOURCES], rule="cap", limit="0.01",
        stale_after_ms=10_000, min_sources=3,
    )  # fmt: skip
    log.make(MarkConfigured, symbol="BTCUSDT-PERP", index="BTCUSDT", funding=PerpetualFunding())
    ledger = Ledger()
    engine, _ = run(log.events, Engine([ledger, MarketComponent(ledger)]))
    rng = random.Random(1)
    events = []
    live = SOURCES[:5] if degraded else SOURCES
    for i in range(n):
        ts = log.ts + 100
        source = SOURCES[i] if degraded and i < 6 else live[i % len(live)]
        price = f"{60000 + rng.randint(-500, 500) / 100:.2f}"
        if degraded and source == SOURCES[4]:
            price = f"{61800 + rng.randint(-500, 500) / 100:.2f}"
        events.append(
            log.make(SourcePrice, ts=ts, source=source, symbol="BTCUSDT", price=price, time=ts)
        )
    return engine, events


def bench_tick(n: int, degraded: bool = False) -> list[int]:
    """One SourcePrice through Engine.process: index recompute + mark update (+ outputs)."""
    engine, events = _tick_workload(n, degraded)
    samples = []
    clock = time.perf_counter_ns
    for event in events:
        start = clock()
        engine.process(event)
        samples.append(clock() - start)
    what = "one stale, one capped" if degraded else "6 sources"
    print(
        f"index+mark per SourcePrice ({what}, Engine.process):",
        _percentiles(samples[n // 10 :]),
    )
    return samples[n // 10 :]


def callgrind_ticks(n: int, degraded: bool = False, warm: int = 1_000) -> None:
    """``warm`` ticks, then ``n`` ticks inside functools.reduce (the callgrind toggle)."""
    engine, events = _tick_workload(warm + n, degraded)
    process = engine.process
    for event in events[:warm]:
        process(event)
    functools.reduce(lambda _, event: process(event), events[warm:], None)


def opcode_ticks(n: int, degraded: bool = False, warm: int = 1_000) -> None:
    """Bytecode instructions executed per tick, by function (sys.settrace, f_trace_opcodes)."""
    engine, events = _tick_workload(warm + n, degraded)
    process = engine.process
    for event in events[:warm]:
        process(event)
    counts: dict[str, int] = {}

    def tracer(frame, what, arg):
        frame.f_trace_opcodes = True
        if what == "opcode":
            code = frame.f_code
            key = f"{Path(code.co_filename).name}:{code.co_firstlineno} {code.co_qualname}"
            counts[key] = counts.get(key, 0) + 1
        return tracer

    sys.settrace(tracer)
    for event in events[warm:]:
        process(event)
    sys.settrace(None)
    total = sum(counts.values())
    print(f"bytecode instructions per tick: {total / n:.1f}")
    for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"{count / n:8.1f}  {key}")


def bench_greeks(repeats: int) -> None:
    rng = np.random.default_rng(2)
    n = 2000
    f = np.full(n, 66342.3)
    k = f * np.exp(rng.uniform(-0.5, 0.5, n))
    t = rng.uniform(1 / 365, 1.0, n)
    v = rng.uniform(0.3, 1.0, n)
    call = k >= f
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        black76_vec(f, k, t, v, 0.0, call)
        samples.append(time.perf_counter_ns() - start)
    print(f"Greeks, 2,000-option chain vectorized: {_percentiles(samples)}")
    prices = black76_vec(f, k, t, v, 0.0, call).price
    start = time.perf_counter()
    for _ in range(max(repeats // 20, 3)):
        implied_vol_vec(prices, f, k, t, 0.0, call)
    elapsed = (time.perf_counter() - start) / max(repeats // 20, 3)
    print(
        f"IV solves, vectorized chain of 2,000: {n / elapsed:,.0f} /s",
        f"({elapsed * 1e3:.2f} ms per chain)",
    )
    m = min(n, repeats * 4)
    start = time.perf_counter()
    for i in range(m):
        implied_vol(prices[i], f[i], k[i], t[i], 0.0, "call" if call[i] else "put")
    elapsed = time.perf_counter() - start
    print(f"IV solves, scalar: {m / elapsed:,.0f} /s ({elapsed / m * 1e6:.1f} µs each)")


def bench_surface(repeats: int) -> None:
    """Fit an 8-expiry surface (26 quotes each) to known SVI smiles, then mark IV + Black-76
    price of a 2,000-option chain spread over those expiries and between them."""
    times = np.array([0.03, 0.05, 0.07, 0.15, 0.25, 0.33, 0.58, 0.83])
    params = [SviParams(0.02 * t, 0.12 * t, -0.35, 0.05, 0.2) for t in times]
    surface = VolSurface.from_params(list(times), [66342.3] * 8, params)
    k_fit = np.linspace(-0.1, 0.1, 26)
    t_fit = np.repeat(times, k_fit.size)
    iv_fit = np.sqrt(np.concatenate([p.total_variance(k_fit) for p in params]) / t_fit)
    strikes_fit = 66342.3 * np.exp(np.tile(k_fit, times.size))
    start = time.perf_counter()
    VolSurface.fit(t_fit, np.full(t_fit.size, 66342.3), strikes_fit, iv_fit)
    print(f"SVI surface fit, 8 expiries x 26 quotes: {(time.perf_counter() - start) * 1e3:.0f} ms")
    rng = np.random.default_rng(3)
    n = 2000
    f = np.full(n, 66342.3)
    k = f * np.exp(rng.uniform(-0.5, 0.5, n))
    t = rng.uniform(times[0], times[-1], n)
    call = k >= f
    samples = []
    for _ in range(repeats):
        begin = time.perf_counter_ns()
        surface.mark_price(f, k, t, call)  # includes surface.iv
        samples.append(time.perf_counter_ns() - begin)
    print(f"Surface mark IV + price, 2,000-option chain vectorized: {_percentiles(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few seconds, smaller samples")
    parser.add_argument("--repeat", type=int, default=1, help="per-tick runs (best p99 shown)")
    parser.add_argument("--callgrind", type=int, metavar="N", help="N ticks for callgrind only")
    parser.add_argument("--opcodes", type=int, metavar="N", help="bytecodes per tick, by function")
    parser.add_argument(
        "--degraded", action="store_true", help="--callgrind / --opcodes: one stale, one capped"
    )
    args = parser.parse_args()
    if args.callgrind is not None:
        callgrind_ticks(args.callgrind, args.degraded)
        return
    if args.opcodes is not None:
        opcode_ticks(args.opcodes, args.degraded)
        return
    print(
        f"python {platform.python_version()} on {platform.machine()}",
        f"({platform.processor() or 'cpu'})",
    )
    ticks = 5_000 if args.smoke else 200_000
    for degraded in (False, True):
        p99s = [
            np.percentile(bench_tick(ticks, degraded), 99) / 1000
            for _ in range(max(args.repeat, 1))
        ]
        if len(p99s) > 1:
            print(
                f"per-tick p99 over {len(p99s)} runs: best {min(p99s):.1f} µs,",
                f"worst {max(p99s):.1f} µs",
            )
    bench_greeks(50 if args.smoke else 1_000)
    bench_surface(50 if args.smoke else 1_000)


if __name__ == "__main__":
    main()
