"""Crash price paths: four built-in synthetic scenarios and a loader of real Binance klines.

**Built-in paths are synthetic.** Each is drawn through a few public facts about one crash —
where the window starts, the low(s) and when, where it ends — taken from Binance USDⓈ-M
BTCUSDT perpetual 1-minute klines (``data.binance.vision``; copies in ``../shared/data``,
documented in its README). Between two anchors the price moves log-linearly, minute by
minute. They reproduce the size and timing of each crash, not its minute-by-minute noise;
for that, pass the real kline file (:func:`kline_path`).

* ``black-thursday``, 2020-03-12 09:00 → 03-13 03:59: 7,382.85; first-leg low 5,199.17 at
  10:48; low 3,621.81 at 03-13 02:16; 5,154.99.
* ``may-19``, 2021-05-19 10:00 → 17:59: 40,359.68; low 28,688.00 at 13:10; 39,372.57.
* ``ftx``, 2022-11-08 12:00 → 23:59: 19,688.90; spike to 20,685.00 at 16:42; low 16,830.00
  at 19:32; 18,534.00.
* ``oct-10``, 2025-10-10 19:00 → 10-11 00:59: 117,178.50; low 101,516.50 at 21:20;
  112,463.30.

A real kline file becomes a path of four points per candle — open, then high and low in the
order the candle implies (a falling candle, close < open, is taken to reach its high first),
then close — at evenly spaced times inside the minute, so the wicks that trigger liquidations
are kept. The intra-candle order is an assumption (klines do not record it) and is stated so.

Prices are floats: a path drives simulated marks, which the caller rounds to each
instrument's tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fengkong.feeds.binance_klines import iter_klines

__all__ = ["BUILTIN", "PricePath", "Scenario", "kline_path", "load_path"]

MINUTE_MS = 60_000


@dataclass(frozen=True)
class PricePath:
    """Prices at times (ms since the epoch, UTC, ascending); ``synthetic`` says whether the
    path is drawn through anchors (True) or read from market data (False)."""

    name: str
    times_ms: np.ndarray
    prices: np.ndarray
    synthetic: bool
    source: str

    def low(self) -> tuple[int, float]:
        """``(time, price)`` of the lowest point (the first one if repeated)."""
        i = int(np.argmin(self.prices))
        return int(self.times_ms[i]), float(self.prices[i])

    def moves(self) -> np.ndarray:
        """Prices relative to the first one (1.0 at the start), to shock any mark with."""
        return self.prices / self.prices[0]


@dataclass(frozen=True)
class Scenario:
    """A synthetic crash: ``anchors`` are (UTC time text ``YYYY-MM-DD HH:MM``, price)."""

    name: str
    anchors: tuple[tuple[str, float], ...]
    facts: str

    def path(self) -> PricePath:
        """One price per minute from the first anchor to the last, log-linear in between."""
        minutes = np.array([_minute(t) for t, _ in self.anchors], dtype=np.int64)
        logs = np.log([p for _, p in self.anchors])
        grid = np.arange(minutes[0], minutes[-1] + 1, dtype=np.int64)
        prices = np.exp(np.interp(grid, minutes, logs))
        prices[np.searchsorted(grid, minutes)] = [p for _, p in self.anchors]  # exact anchors
        return PricePath(self.name, grid * MINUTE_MS, prices, True, self.facts)


def _minute(text: str) -> int:
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    return int(moment.timestamp()) // 60


_FACTS = "Binance USDⓈ-M BTCUSDT perpetual 1m klines (data.binance.vision), "

BUILTIN: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "black-thursday",
            (
                ("2020-03-12 09:00", 7382.85),
                ("2020-03-12 10:48", 5199.17),
                ("2020-03-13 02:16", 3621.81),
                ("2020-03-13 03:59", 5154.99),
            ),
            _FACTS + "2020-03-12/13: first leg to 5,199.17, low 3,621.81 at 02:16",
        ),
        Scenario(
            "may-19",
            (
                ("2021-05-19 10:00", 40359.68),
                ("2021-05-19 13:10", 28688.00),
                ("2021-05-19 17:59", 39372.57),
            ),
            _FACTS + "2021-05-19: low 28,688.00 at 13:10",
        ),
        Scenario(
            "ftx",
            (
                ("2022-11-08 12:00", 19688.90),
                ("2022-11-08 16:42", 20685.00),
                ("2022-11-08 19:32", 16830.00),
                ("2022-11-08 23:59", 18534.00),
            ),
            _FACTS + "2022-11-08: spike to 20,685 at 16:42, low 16,830 at 19:32",
        ),
        Scenario(
            "oct-10",
            (
                ("2025-10-10 19:00", 117178.50),
                ("2025-10-10 21:20", 101516.50),
                ("2025-10-11 00:59", 112463.30),
            ),
            _FACTS + "2025-10-10: tariff-news cascade, low 101,516.50 at 21:20",
        ),
    )
}


def kline_path(path: Path | str) -> PricePath:
    """A real Binance kline file (any layout :mod:`fengkong.feeds.binance_klines` reads) as
    a path of open / high-or-low / low-or-high / close per candle (module docstring)."""
    bars = list(iter_klines(path))
    if not bars:
        raise ValueError(f"{path}: no candles")
    interval = bars[1].open_time_ms - bars[0].open_time_ms if len(bars) > 1 else MINUTE_MS
    times, prices = [], []
    for bar in bars:
        o, h, lo, c = (float(x) for x in (bar.open, bar.high, bar.low, bar.close))
        middle = (h, lo) if c < o else (lo, h)
        for j, price in enumerate((o, *middle, c)):
            times.append(bar.open_time_ms + j * interval // 4)
            prices.append(price)
    name = Path(path).stem
    return PricePath(name, np.array(times, dtype=np.int64), np.array(prices), False, str(path))


def load_path(spec: str) -> PricePath:
    """A built-in scenario by name, or a kline CSV by path."""
    scenario = BUILTIN.get(spec)
    if scenario is not None:
        return scenario.path()
    if spec.endswith(".csv") and Path(spec).exists():
        return kline_path(spec)
    raise ValueError(f"unknown scenario {spec!r}: one of {', '.join(BUILTIN)} or a kline .csv")
