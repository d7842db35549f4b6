"""Benchmark: whole-book revaluation and liquidation screening on a mark tick (issue 5).

Workload (docs/benchmarks.md, "Revaluation"): a seeded synthetic book
(:mod:`fengkong.sim.population`) of 1,000,000 accounts holding 0–4 position legs each
(about 2.8M positions) on 200 perpetuals with 6 brackets each (:mod:`fengkong.sim.universe`:
190 linear USDT, 10 inverse BTC-margined), cross and isolated, one-way and hedge mode. The
book is built as an exact :class:`~fengkong.ledger.ledger.Ledger` and mirrored into a
:class:`~fengkong.liquidation.book.PositionBook`.

Each full tick moves every mark by exp(N(−1 %, 2 %)) from the listing marks. Measured, p50 /
p99:

* ``full-book tick``: :meth:`Screener.tick_all` (the float32 coarse screen, every account;
  ``parallel=True`` from :data:`PARALLEL_MIN_ACCOUNTS` accounts up);
* ``float64 check, every account``: the fine float64 kernel (band 1e-9, the screen before the
  float32 mirror) on the same marks, interleaved — its flags must be covered by the screen's;
* ``one-instrument tick``: :meth:`Screener.tick_instrument` (incremental: only the
  instrument's positions, per-group headroom kept between ticks) for the most held
  instrument (BTCUSDT-PERP) and a median one, each tick a N(0, 1 %) move from the last full
  tick's mark;
* ``calibration``: the minimal kernel of streaming-and-perf.md §3.2 (one asset, no isolated
  positions, no band) on the same arena, to show what the shared machine delivers during the
  run;
* ``numpy baseline``: the float64 check in plain vectorized numpy (per-position gather,
  bracket by ``T − 1`` comparisons, ``np.bincount`` per account and asset), same band.

Checked in the same run: the screen's flags cover the float64 check's on every full tick;
numpy and the numba float64 kernel flag the same accounts; after the one-instrument ticks the
incrementally kept candidates equal a fresh whole-book screen's; and, at the last full tick
and again after incremental ticks, the exact integer check (:func:`exact_candidates` on the
ledger) of the whole book finds no candidate the screen missed, and re-checking the flagged
accounts gives exactly the exact set.

``--smoke`` runs 20,000 accounts on 40 instruments in seconds (the test suite's smoke check).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np
from numba import prange

from fengkong.liquidation.book import PositionBook
from fengkong.liquidation.exact import exact_candidates
from fengkong.liquidation.screen import (
    PARALLEL_MIN_ACCOUNTS,
    REL_BAND,
    UNIT_BAND,
    Screener,
    _tick_all,
    _tick_all_serial,
)
from fengkong.sim.population import make_population
from fengkong.sim.universe import make_universe


def tick_marks(universe, rng) -> dict[str, int]:
    moves = np.exp(rng.normal(-0.01, 0.02, size=len(universe.marks)))
    return {
        s: max(1, round(m * k)) for s, m, k in zip(universe.symbols, universe.marks, moves,
                                                    strict=True)
    }  # fmt: skip


class NumpyBaseline:
    """Plain-numpy revaluation of the same book and band (layout gathered once)."""

    def __init__(self, book: PositionBook) -> None:
        n = book.accounts
        counts = book.count[:n].astype(np.int64)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        slots = np.repeat(book.start[:n], counts) + offsets
        self.book = book
        self.account = np.repeat(np.arange(n), counts)
        self.inst = book.inst[slots].astype(np.int64)
        self.size = book.size[slots]
        self.entry = book.entry[slots]
        self.margin = book.margin[slots]
        self.isolated = book.isolated[slots]
        columns = book.instruments
        _, _, settle, caps, mmr, cum, last, limit, asset_band = columns.kernel_view(
            REL_BAND, UNIT_BAND
        )
        self.inverse = columns.inverse[: len(columns)][self.inst]
        self.settle = settle[self.inst].astype(np.int64)
        self.caps, self.mmr, self.cum = caps, mmr, cum
        self.last = last[self.inst]
        self.limit = limit[self.inst]
        self.slot_band = asset_band[self.settle]
        self.asset_band = np.tile(asset_band, book.accounts)
        self.assets = book.wallet.shape[1]
        self.group = self.account * self.assets + self.settle

    def tick(self, marks: np.ndarray) -> np.ndarray:
        """Flagged accounts at ``marks`` (floats, instrument order), ascending."""
        mark = marks[self.inst]
        upnl = np.where(self.inverse, self.entry - self.size / mark, self.size * mark - self.entry)
        notional = np.where(self.inverse, np.abs(self.size) / mark, np.abs(self.size) * mark)
        caps = self.caps[self.inst]
        tier = np.minimum((notional[:, None] > caps[:, :-1]).sum(axis=1), self.last)
        mm = notional * self.mmr[self.inst, tier] - self.cum[self.inst, tier]
        band = REL_BAND * (notional + np.abs(self.entry)) + self.slot_band
        band[notional > self.limit] = np.inf
        cross = ~self.isolated
        n = self.book.accounts * self.assets
        wallet = self.book.wallet[: self.book.accounts].ravel()
        group = self.group[cross]
        equity = wallet + np.bincount(group, upnl[cross], n)
        maint = np.bincount(group, mm[cross], n)
        bands = np.bincount(group, band[cross], n)
        flag = (bands > 0) & (equity - maint <= bands + REL_BAND * np.abs(wallet))
        flags = flag.reshape(-1, self.assets).any(axis=1)
        iso = self.isolated
        held = self.margin[iso]
        iso_flag = held + upnl[iso] - mm[iso] <= band[iso] + REL_BAND * np.abs(held)
        flags[self.account[iso][iso_flag]] = True
        return np.flatnonzero(flags)


@numba.njit(cache=True, parallel=True)
def minimal_kernel(n, wallet, start, count, inst, size, entry, price, sign, caps, mmr, cum, last,
                   equity, maint, flags):  # fmt: skip
    """Calibration only: the minimal kernel of streaming-and-perf.md §3.2 (one settlement
    asset, no isolated positions, no band, no over-limit check) on the same arena, to show
    what the machine delivers at the time of the run. Its flags are not a screen."""
    for a in prange(n):
        e = wallet[a, 0]
        m = 0.0
        for k in range(start[a], start[a] + count[a]):
            i = inst[k]
            x = size[k] * price[i]
            e += sign[i] * (x - entry[k])
            notional = abs(x)
            t = 0
            while t < last[i] and notional > caps[i, t]:
                t += 1
            m += notional * mmr[i, t] - cum[i, t]
        equity[a, 0] = e
        maint[a, 0] = m
        flags[a] = e <= m


def percentiles(times: list[float], cpu: list[float] | None = None) -> str:
    """Wall-clock p50 / p99; with ``cpu``, the p50 of the process CPU time (every thread) per
    call, which a shared machine inflates much less than the wall clock."""
    ms = np.array(times) * 1e3
    text = f"p50 {np.percentile(ms, 50):8.2f} ms   p99 {np.percentile(ms, 99):8.2f} ms"
    if cpu is not None:
        text += f"   cpu p50 {np.percentile(np.array(cpu) * 1e3, 50):7.2f} ms"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--instruments", type=int, default=200)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--numpy-ticks", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="numba threads (0: all CPUs)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    if args.smoke:
        args.accounts, args.instruments, args.ticks, args.numpy_ticks = 20_000, 40, 10, 3

    python = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {python},"
          f" numba {numba.__version__} ({numba.get_num_threads()} threads)")  # fmt: skip
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    start = time.perf_counter()
    universe = make_universe(instruments=args.instruments, inverse=10, seed=args.seed)
    population = make_population(universe, accounts=args.accounts, seed=args.seed)
    ledger = population.to_ledger()
    built = time.perf_counter()
    book = PositionBook.from_ledger(ledger, universe.tables)
    mirrored = time.perf_counter()
    print(f"book: {book.accounts:,} accounts, {book.positions:,} positions, "
          f"{len(universe.instruments)} instruments, {book.wallet.shape[1]} settlement assets; "
          f"ledger built in {built - start:.1f} s, "
          f"mirrored in {mirrored - built:.1f} s")  # fmt: skip

    rng = np.random.default_rng(args.seed)
    screener = Screener(book)
    columns = book.instruments
    marks = tick_marks(universe, rng)
    for symbol, price in marks.items():
        columns.set_mark(symbol, price)
    screener.tick_all()  # compile or load the cache
    n = book.accounts
    fine_flags = np.zeros(max(n, 1), dtype=np.bool_)
    fine_kernel = _tick_all if n >= PARALLEL_MIN_ACCOUNTS else _tick_all_serial

    def fine_check() -> np.ndarray:
        fine_kernel(n, *screener._fine_arrays(fine_flags))
        return np.flatnonzero(fine_flags[:n])

    fine_check()
    full, full_cpu, fine_times, fine_cpu, flagged_counts, extra = [], [], [], [], [], []
    for _ in range(args.ticks):
        marks = tick_marks(universe, rng)
        for symbol, price in marks.items():
            columns.set_mark(symbol, price)
        begin, cpu = time.perf_counter(), time.process_time()
        flagged = screener.tick_all()
        full.append(time.perf_counter() - begin)
        full_cpu.append(time.process_time() - cpu)
        begin, cpu = time.perf_counter(), time.process_time()
        fine = fine_check()
        fine_times.append(time.perf_counter() - begin)
        fine_cpu.append(time.process_time() - cpu)
        if not np.isin(fine, flagged).all():
            raise SystemExit("the float32 screen missed an account the float64 check flags")
        flagged_counts.append(flagged.size)
        extra.append(flagged.size - fine.size)
    print(f"{'full-book tick (float32 screen, numba)':<44} {percentiles(full, full_cpu)}   "
          f"flagged per tick: median {int(np.median(flagged_counts)):,}")  # fmt: skip
    print(f"{'float64 check, every account (interleaved)':<44} "
          f"{percentiles(fine_times, fine_cpu)}   "
          f"covered by the screen on every tick; the screen flags {int(np.median(extra))} "
          f"more (median), {max(extra)} at most")  # fmt: skip

    price, sign, _, caps, mmr, cum, last, _, _ = columns.kernel_view(REL_BAND, UNIT_BAND)
    scratch = (np.zeros((n, book.wallet.shape[1])), np.zeros((n, book.wallet.shape[1])))
    calibration_args = (book.accounts, book.wallet, book.start, book.count, book.inst, book.size,
                        book.entry, price, sign, caps, mmr, cum, last, *scratch,
                        np.zeros(book.accounts, dtype=np.bool_))  # fmt: skip
    minimal_kernel(*calibration_args)
    calibration, calibration_cpu = [], []
    for _ in range(args.ticks):
        begin, cpu = time.perf_counter(), time.process_time()
        minimal_kernel(*calibration_args)
        calibration.append(time.perf_counter() - begin)
        calibration_cpu.append(time.process_time() - cpu)
    print(
        f"{'calibration: minimal kernel (§3.2 shape)':<44} "
        f"{percentiles(calibration, calibration_cpu)}"
    )

    holders = np.array([book.holder_accounts(i).size for i in range(len(columns))])
    busiest = int(np.argmax(holders))
    median = int(np.argsort(holders)[len(holders) // 2])
    last_marks = dict(marks)
    for i in (busiest, median):
        symbol = columns.symbols[i]
        screener.tick_instrument(symbol, last_marks[symbol])  # compile or load the cache
        times, cpu_times, flagged_counts = [], [], []
        for _ in range(args.ticks):
            price = max(1, round(last_marks[symbol] * float(np.exp(rng.normal(0, 0.01)))))
            begin, cpu = time.perf_counter(), time.process_time()
            flagged = screener.tick_instrument(symbol, price)
            times.append(time.perf_counter() - begin)
            cpu_times.append(time.process_time() - cpu)
            flagged_counts.append(flagged.size)
        fresh = Screener(book).tick_all()
        if not np.array_equal(screener.candidates(), fresh):
            raise SystemExit(f"incremental ticks of {symbol} disagree with a fresh screen")
        print(f"{'one-instrument tick ' + symbol:<44} {percentiles(times, cpu_times)}   "
              f"holders {holders[i]:,}, positions {book.legs(i).n:,}, flagged holders: median "
              f"{int(np.median(flagged_counts)):,}; candidates = a fresh screen's")  # fmt: skip
        columns.set_mark(symbol, last_marks[symbol])

    baseline = NumpyBaseline(book)
    numpy_times = []
    for _ in range(args.numpy_ticks):
        marks = tick_marks(universe, rng)
        for symbol, price in marks.items():
            columns.set_mark(symbol, price)
        current = columns.marks[: len(columns)].copy()
        begin = time.perf_counter()
        expected = baseline.tick(current)
        numpy_times.append(time.perf_counter() - begin)
        got = screener.tick_all()
        if not np.array_equal(fine_check(), expected) or not np.isin(expected, got).all():
            raise SystemExit(f"numpy and numba disagree: {expected.size} vs {got.size}")
    print(
        f"{'numpy baseline, float64 check (full book)':<44} {percentiles(numpy_times)}   "
        f"same flagged accounts as the numba float64 kernel on {len(numpy_times)} ticks"
    )

    def exact_check(label: str, flagged: np.ndarray, marks: dict[str, int]) -> None:
        begin = time.perf_counter()
        exact = exact_candidates(ledger, universe.tables, marks)
        exact_time = time.perf_counter() - begin
        flagged_ids = [book.account_ids[a] for a in flagged]
        missed = sorted(set(exact) - set(flagged_ids))
        rechecked = exact_candidates(ledger, universe.tables, marks, flagged_ids)
        if missed or rechecked != exact:
            raise SystemExit(f"{label}: screen disagrees with the exact check: missed {missed[:5]}")
        print(f"exact integer check of the whole book, {label}: {len(exact):,} candidates in "
              f"{exact_time:.1f} s; screen flagged {len(flagged_ids):,}, missed 0, exact "
              f"re-check of the flagged = the exact set")  # fmt: skip

    exact_check("last full tick", got, marks)
    symbol = columns.symbols[busiest]
    for _ in range(5):
        marks[symbol] = max(1, round(marks[symbol] * float(np.exp(rng.normal(0, 0.01)))))
        screener.tick_instrument(symbol, marks[symbol])
    exact_check(f"after 5 incremental {symbol} ticks", screener.candidates(), marks)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
