"""``benchmarks/bench_var.py --smoke`` runs and its internal agreement checks pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_var.py"


def test_bench_var_smoke_runs_and_agrees_with_the_numpy_baseline():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--no-dask"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "fengkong book_var_es (1 process)" in done.stdout
    assert "speed-up over numpy" in done.stdout
