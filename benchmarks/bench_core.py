"""Core benchmark: fills through ``Engine.process`` in memory, with group-commit journaling
and with an fsync per record.

Run: ``.venv/bin/python benchmarks/bench_core.py`` (``--smoke`` for a few-second run).
``--instructions`` runs the log once through the core engine, untimed, inside one
``collections.deque(map(...))`` call, for an instruction count that the machine's load cannot
disturb: ``valgrind --tool=callgrind --toggle-collect=deque_init .venv/bin/python
benchmarks/bench_core.py --instructions`` counts only that call; divide by the fills printed.
Prints p50 / p99 / p999 per fill and fills per second for each mode — the core engine (the
ledger alone, as the foundation issue defines it) and the embedded engine (ledger, market,
gate and rules components, whose observers see every fill) in memory, then the embedded
core engine journaled — and, as a baseline in the same run, the same fills applied to a naive float
ledger (dicts, no validation, no exact rounding) to show what exactness and fail-closed
validation cost. Goals on the project machine: >= 200,000 fills/s in memory, >= 100,000
fills/s with group commit.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make tests.factories importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.factories import busy_log

from fengkong.engine import Engine
from fengkong.journal import Durability, DurableEngine
from fengkong.ledger.ledger import Ledger
from fengkong.model.events import Event, Fill, Rejected


def percentiles(samples_ns: np.ndarray) -> tuple[float, float, float]:
    p50, p99, p999 = np.percentile(samples_ns / 1000.0, [50, 99, 99.9])
    return float(p50), float(p99), float(p999)


def timed(process, events: list[Event]) -> tuple[np.ndarray, float]:
    """Per-fill latencies (ns) and whole-run fills per second, GC left on as in production."""
    clock = time.perf_counter_ns
    samples = np.empty(len(events), dtype=np.int64)
    fills = 0
    rejected = 0
    started = clock()
    for i, event in enumerate(events):
        t0 = clock()
        outputs = process(event)
        samples[i] = clock() - t0
        if type(event) is Fill:
            fills += 1
            if outputs and isinstance(outputs[0], Rejected):
                rejected += 1
    elapsed = (clock() - started) / 1e9
    if rejected:
        raise SystemExit(f"{rejected} fills were rejected: the benchmark log is broken")
    is_fill = np.fromiter((type(e) is Fill for e in events), dtype=bool, count=len(events))
    return samples[is_fill], fills / elapsed


def untimed_rate(process, events: list[Event]) -> float:
    fills = sum(1 for e in events if type(e) is Fill)
    started = time.perf_counter()
    for event in events:
        process(event)
    return fills / (time.perf_counter() - started)


def float_ledger_rate(events: list[Event]) -> float:
    """Baseline: the same fills on dict-of-float balances and positions, no checks."""
    balances: dict[tuple[str, str], float] = {}
    positions: dict[tuple[str, str], list[float]] = {}
    fills = [e for e in events if type(e) is Fill]
    started = time.perf_counter()
    for fill in fills:
        price, qty = float(fill.price), float(fill.qty)
        fee = float(fill.taker_fee_rate) * price * qty
        for account, signed in ((fill.buyer, qty), (fill.seller, -qty)):
            held = positions.setdefault((account, fill.symbol), [0.0, 0.0])
            if held[0] and (held[0] > 0) != (signed > 0):
                closed = min(abs(signed), abs(held[0]))
                entry = held[1] / held[0]
                pnl = closed * (price - entry) * (1 if held[0] > 0 else -1)
                key = (account, "USDT")
                balances[key] = balances.get(key, 0.0) + pnl
            held[0] += signed
            held[1] += signed * price
            key = (account, "USDT")
            balances[key] = balances.get(key, 0.0) - fee
    return len(fills) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=300_000)
    parser.add_argument("--fsync-fills", type=int, default=3_000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="one untimed pass of the core engine in one deque(map(...)) call (for callgrind)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.fills, args.fsync_fills = 5_000, 200
    if args.instructions:
        log = busy_log(args.fills, accounts=1000)
        engine = Engine([Ledger()])
        collections.deque(map(engine.process, log), 0)
        print(f"{sum(1 for e in log if type(e) is Fill)} fills, {len(log)} events")
        return
    print(
        f"fengkong bench_core — {platform.python_implementation()} {platform.python_version()}"
        f", {platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}"
    )
    events = busy_log(args.fills, accounts=1000)
    gc.collect()
    rows = []

    def core() -> Engine:
        return Engine([Ledger()])

    def journaled(folder: str, durability: Durability) -> DurableEngine:
        return DurableEngine(
            Path(folder), durability, group_records=1000, group_ms=5, components=[Ledger()]
        )

    def measure(make, log: list[Event], runs: int) -> tuple[np.ndarray, float]:
        """Percentiles from one timed pass; fills/s from the best of ``runs`` untimed passes
        (a fresh engine, and a fresh journal folder, each time)."""
        best = 0.0
        samples = np.empty(0)
        for run in range(runs + 1):
            with tempfile.TemporaryDirectory() as folder:
                engine = make(folder)
                if run == 0:
                    samples, _ = timed(engine.process, log)
                else:
                    best = max(best, untimed_rate(engine.process, log))
                if isinstance(engine, DurableEngine):
                    engine.close()
        return samples, best

    samples, rate = measure(lambda _: core(), events, 3)
    rows.append(("in memory, core engine (ledger)", *percentiles(samples), rate, 200_000))
    samples, rate = measure(lambda _: Engine(), events, 3)
    rows.append(("in memory, embedded engine", *percentiles(samples), rate, None))
    samples, rate = measure(lambda f: journaled(f, Durability.GROUP), events, 3)
    rows.append(("core, group commit (1000 rec/5 ms)", *percentiles(samples), rate, 100_000))
    small = busy_log(args.fsync_fills, accounts=100)
    samples, rate = measure(lambda f: journaled(f, Durability.ALWAYS), small, 1)
    rows.append(("core, fsync every record", *percentiles(samples), rate, None))

    baseline = max(float_ledger_rate(events) for _ in range(3))
    print(
        f"\n{len(events):,} events ({args.fills:,} fills on a linear and an inverse perpetual,"
        f" 1,000 accounts; fsync mode: {args.fsync_fills:,} fills)\n"
    )
    print(f"{'mode':34} {'p50 µs':>8} {'p99 µs':>8} {'p999 µs':>9} {'fills/s':>11}  goal")
    for name, p50, p99, p999, rate, goal in rows:
        verdict = "" if goal is None else f">= {goal:,}: {'met' if rate >= goal else 'NOT met'}"
        print(f"{name:34} {p50:8.2f} {p99:8.2f} {p999:9.2f} {rate:11,.0f}  {verdict}")
    print(
        f"{'baseline: float dict ledger':34} {'':8} {'':8} {'':9} {baseline:11,.0f}  "
        f"(no validation, inexact; the core engine = {rows[0][4] / baseline:.2f}x of it)"
    )


if __name__ == "__main__":
    main()
