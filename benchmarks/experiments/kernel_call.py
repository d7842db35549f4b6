"""Experiment (timing only): the flat stores' kernel call inside the fused step of
``bench_rules.py``'s pack, cold and hot.

Each decision's call to :func:`fengkong.rules.flat.keyed.decide` is wrapped in a timer (the
wrapper's own cost, about 0.1 µs, is in the numbers). Right after it, outside the decision's
time, the same call is made twice more with reads only (``what = READS``: at the same
``now`` a read changes nothing a second read would see), and timed the second time: the
call with every row it reads in cache ("hot"); then with a plan of no read, the call's fixed
cost (taking the arrays and arguments). The pack's history is ``bench_rules.py``'s: 100,000
requests over ``--accounts`` accounts, then three blocks of 5,000 decisions, one line each.
``docs/design/compiled-stores.md`` (twelfth session) reads these numbers.

    python benchmarks/experiments/kernel_call.py [--accounts 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_rules as bench
from fengkong.rules import fused
from fengkong.rules.component import RulesComponent
from fengkong.rules.events import RulePackLoaded
from fengkong.rules.flat import keyed

NO_READ = np.zeros(4, np.int64)  # a plan of no read (and, with ``what = READS``, no update)


class Timings:
    """Sums over a block: the calls, their time, and the hot reads-only and no-read calls."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls = self.call_ns = self.hot_ns = self.fixed_ns = 0

    def line(self) -> str:
        n = max(1, self.calls)
        return (
            f"kernel {self.call_ns / n / 1e3:.2f} us per call ({self.calls} calls); hot, reads "
            f"only {self.hot_ns / n / 1e3:.2f} us; hot, no read {self.fixed_ns / n / 1e3:.2f} us"
        )


def timed_entries(timings: Timings) -> None:
    """Make every fused step compiled from now on call the kernel through a timer."""
    compiled = fused._entry
    clock = time.perf_counter_ns

    def entry(writer, size):
        kernel = compiled(writer, size)

        def timed(*arguments):
            start = clock()
            result = kernel(*arguments)
            timings.call_ns += clock() - start
            timings.calls += 1
            args = arguments[-1]
            reads = (args[0], args[1], keyed.READS, *args[3:])
            kernel(*arguments[:-1], reads)  # the rows into cache
            start = clock()
            kernel(*arguments[:-1], reads)
            middle = clock()
            kernel(*arguments[:-3], NO_READ, arguments[-2], reads)
            timings.fixed_ns += clock() - middle
            timings.hot_ns += middle - start
            return result

        return timed

    fused._entry = entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=5_000)
    accounts = parser.parse_args().accounts
    timings = Timings()
    timed_entries(timings)
    rules = [rule["ours"] for rule in bench.make_rules()]
    component = RulesComponent()
    pack = bench.pack_yaml(rules)
    component.apply(RulePackLoaded(seq=0, id="pack", ts=bench.T0, pack_yaml=pack, author="x"))
    for event in bench.requests(100_000, accounts, bench.T0, seed=1):
        component.apply(event)
    events = bench.requests(15_000, accounts, bench.T0 + 100_000 * 500, seed=2)
    for block in range(3):
        timings.reset()
        for event in events[block * 5_000 : (block + 1) * 5_000]:
            component.apply(event)
        print(timings.line())


if __name__ == "__main__":
    main()
