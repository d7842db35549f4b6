"""Crash paths hit their stated lows at their stated times; real klines load as paths."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from fengkong.sim.scenarios import BUILTIN, kline_path, load_path


def ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()) * 1000


@pytest.mark.parametrize(
    ("name", "low_at", "low", "start", "end"),
    [
        ("black-thursday", "2020-03-13 02:16", 3621.81, 7382.85, 5154.99),
        ("may-19", "2021-05-19 13:10", 28688.00, 40359.68, 39372.57),
        ("ftx", "2022-11-08 19:32", 16830.00, 19688.90, 18534.00),
        ("oct-10", "2025-10-10 21:20", 101516.50, 117178.50, 112463.30),
    ],
)
def test_builtin_scenario_hits_its_stated_low_at_its_stated_time(name, low_at, low, start, end):
    path = load_path(name)
    assert path.synthetic and "Binance" in path.source
    assert path.low() == (ms(low_at), low)
    assert path.prices[0] == start and path.prices[-1] == end
    assert np.all(np.diff(path.times_ms) == 60_000)
    assert path.moves()[0] == 1.0


def test_black_thursday_passes_its_first_leg_low_and_moves_log_linearly_between_anchors():
    path = BUILTIN["black-thursday"].path()
    first_leg = int(np.searchsorted(path.times_ms, ms("2020-03-12 10:48")))
    assert path.prices[first_leg] == 5199.17
    steps = np.diff(np.log(path.prices[: first_leg + 1]))
    np.testing.assert_allclose(steps, steps[0], rtol=1e-9)  # constant log step on a leg
    assert steps[0] < 0


def test_ftx_rises_to_the_spike_before_the_collapse():
    path = BUILTIN["ftx"].path()
    spike = int(np.searchsorted(path.times_ms, ms("2022-11-08 16:42")))
    assert path.prices[spike] == path.prices.max() == 20685.00


def test_real_black_thursday_klines_keep_the_wick_low_at_02_16(shared_data: Path):
    path = kline_path(shared_data / "btcusdt-perp-1m-2020-03-12-black-thursday.csv")
    assert not path.synthetic
    at, low = path.low()
    assert low == 3621.81
    assert ms("2020-03-13 02:16") <= at < ms("2020-03-13 02:17")
    assert path.prices.size == 4 * 1140 and np.all(np.diff(path.times_ms) > 0)


def test_a_csv_path_loads_and_an_unknown_name_is_refused(shared_data: Path):
    file = shared_data / "btcusdt-perp-1m-2025-10-10-cascade.csv"
    assert load_path(str(file)).low()[1] == 101516.5
    with pytest.raises(ValueError, match="unknown scenario"):
        load_path("luna")
