"""Every benchmark runs in its small smoke mode (benchmarks are not timed tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[2] / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_smoke_mode_runs_and_prints_percentiles(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=script.parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "p99" in done.stdout, done.stdout[-2000:]
