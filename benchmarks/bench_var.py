"""Benchmark: historical VaR and ES of every account at once (issue 7).

Workload (docs/benchmarks.md, after streaming-and-perf §4): 200,000 portfolios × 1,000
scenarios × 50 instruments. Scenario returns are Student-t (4 dof, 2% scale), seeded; each
portfolio holds 5 of the 50 instruments. Per run: P&L = H · Uᵀ and VaR / ES at 99% for every
portfolio.

Compared in the same process run:

* ``fengkong``: :func:`fengkong.analytics.book.book_var_es` (per chunk of 2,048 accounts: the
  compiled sparse P&L + one-pass tail selection when at most 25% of holdings are non-zero,
  as here; with ``--held 50`` a dense BLAS product + the same tail selection);
* ``numpy baseline``: the plain-numpy prototype, chunks of 10,000 portfolios, matrix product,
  then ``np.partition`` to bring the ``m + 1`` worst scenarios forward and a sort of those for
  VaR and ES (the same convention: the numbers must agree to 1e-9; the P&L sums are added
  in a different order);
* ``dask``: :func:`fengkong.analytics.distributed.book_var_es_dask` on a LocalCluster of
  2 workers × 1 thread, chunked by accounts (numbers must equal ``fengkong``'s exactly).

Prints p50 / p99 over ``--repeats`` runs and throughput (portfolios per second).
``--smoke`` runs a small size in seconds (used by the test suite's smoke check).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from fengkong.analytics.book import book_var_es
from fengkong.analytics.tail import tail_spec

CONFIDENCE = 0.99


def workload(portfolios: int, scenarios: int, instruments: int, held: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    unit = rng.standard_t(4, size=(scenarios, instruments)) * 0.02 * 1_000.0  # USD per contract
    holdings = np.zeros((portfolios, instruments))
    rows = np.arange(portfolios)[:, None]
    columns = np.argsort(rng.random((portfolios, instruments)), axis=1)[:, :held]
    holdings[rows, columns] = rng.normal(0.0, 10.0, size=(portfolios, held))
    return holdings, unit


def numpy_baseline(holdings: np.ndarray, unit: np.ndarray, chunk: int = 10_000):
    """Plain numpy: product per chunk, ``np.partition`` for the tail, sort of the tail for ES."""
    spec = tail_spec(unit.shape[0], CONFIDENCE)
    var = np.empty(holdings.shape[0])
    es = np.empty(holdings.shape[0])
    for start in range(0, holdings.shape[0], chunk):
        pnl = holdings[start : start + chunk] @ unit.T
        tail = np.sort(np.partition(pnl, spec.whole, axis=1)[:, : spec.whole + 1], axis=1)
        var[start : start + chunk] = -tail[:, spec.whole]
        es[start : start + chunk] = (
            -(tail[:, : spec.whole].sum(axis=1) + spec.fraction * tail[:, spec.whole])
            / spec.tail_mass
        )
    return var, es


def timed(function, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return np.array(times), result


def report(name: str, times: np.ndarray, portfolios: int) -> None:
    p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
    print(
        f"{name:<34} p50 {p50:7.3f} s   p99 {p99:7.3f} s   "
        f"throughput {portfolios / p50:12,.0f} portfolios/s   (runs: {len(times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--held", type=int, default=5, help="instruments held per portfolio (50: dense book)"
    )
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster run")
    parser.add_argument(
        "--dask-processes", action="store_true", help="Dask workers as processes, not threads"
    )
    args = parser.parse_args()
    if args.smoke:
        portfolios, scenarios, instruments, repeats = 4_096, 250, 10, 2
    else:
        portfolios, scenarios, instruments, repeats = 200_000, 1_000, 50, args.repeats
    held = min(args.held, instruments)
    holdings, unit = workload(portfolios, scenarios, instruments, held=held)
    print(
        f"VaR/ES {CONFIDENCE:.0%}: {portfolios:,} portfolios x {scenarios:,} scenarios x "
        f"{instruments} instruments ({held} held each) | "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, numpy {np.__version__}"
    )
    book_var_es(holdings[:2048], unit, CONFIDENCE)  # compile the kernel (cached on disk)
    times, (var, es) = timed(lambda: book_var_es(holdings, unit, CONFIDENCE), repeats)
    report("fengkong book_var_es (1 process)", times, portfolios)
    base_times, (base_var, base_es) = timed(lambda: numpy_baseline(holdings, unit), repeats)
    report("numpy baseline (1 process)", base_times, portfolios)
    # same convention; the P&L sums may differ in the last bits (sparse path adds per column)
    np.testing.assert_allclose(var[0], base_var, rtol=1e-9, err_msg="VaR differs from numpy")
    np.testing.assert_allclose(es[0], base_es, rtol=1e-9, err_msg="ES differs from numpy")
    print(
        f"speed-up over numpy: {np.median(base_times) / np.median(times):.2f}x; "
        f"mean VaR {var[0].mean():,.2f}, mean ES {es[0].mean():,.2f}"
    )
    if args.no_dask:
        return
    from dask.distributed import Client, LocalCluster

    from fengkong.analytics.distributed import book_var_es_dask

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=args.dask_processes,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        started = time.perf_counter() - start
        run = lambda: book_var_es_dask(client, holdings, unit, CONFIDENCE)  # noqa: E731
        run()  # warm the workers (kernel compile / load)
        dask_times, (dask_var, dask_es) = timed(run, repeats)
    kind = "processes" if args.dask_processes else "threads"
    report(f"dask LocalCluster 2x1 ({kind})", dask_times, portfolios)
    print(f"cluster start {started:.2f} s")
    assert np.array_equal(dask_var, var) and np.array_equal(dask_es, es), "Dask differs"


if __name__ == "__main__":
    main()
