"""Stress tests: replayed crashes, hypothetical shocks, and the reverse stress test.

Every scenario is an instantaneous move of each underlying by a simple return, with option
volatilities optionally multiplied; the portfolio is revalued in full
(:func:`fengkong.analytics.revaluation.unit_pnl` with no time passing).

Historical scenarios, per crash day ``D`` (:data:`fengkong.analytics.history.CRASH_DATES`),
from the real Binance files:

* ``D 1-day``: each asset's close-to-close return of day ``D`` (daily spot candles);
* ``D intraday``: each asset's worst fall from a preceding high to a low on day ``D``, on the
  finest bars held: 1-minute BTCUSDT perpetual klines for the whole crash window, hourly spot
  bars for ETH in 2022-11 and 2025-10, otherwise the daily bar's open-to-low (the open
  certainly precedes the low; the high may not). The more severe of the daily and the finer
  measurement is taken.

An asset not yet listed on ``D`` takes BTC's move, and the scenario's sources say so.

Hypothetical: every asset moves by ``x``; option volatilities ×``k``; correlations set to 1
(a stressed-covariance Monte Carlo VaR, :func:`stressed_var`).

Reverse stress (EBA GL/2018/04 §4.6): the smallest uniform move, down and up, whose loss
uses up a given buffer (for example the insurance fund): the first grid point (step 0.25%)
where the loss reaches the buffer, refined by Brent's method between grid points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from fengkong.analytics.history import (
    CRASH_DATES,
    SPOT_HOURLY_FILES,
    load_daily_bars,
    load_hourly_bars,
    load_minute_bars,
)
from fengkong.analytics.instruments import InstrumentTable
from fengkong.analytics.montecarlo import simulate_log_returns
from fengkong.analytics.parametric import Innovation
from fengkong.analytics.revaluation import unit_pnl
from fengkong.analytics.tail import var_es

__all__ = [
    "ReverseStress",
    "Scenario",
    "historical_scenarios",
    "hypothetical_scenarios",
    "max_drawdown",
    "reverse_stress",
    "run_scenarios",
    "stressed_covariance",
    "stressed_var",
]

PROXY_ASSET = "BTC"


@dataclass(frozen=True)
class Scenario:
    """Simple-return shock per asset (and a volatility multiplier for options)."""

    name: str
    shocks: dict[str, float]
    vol_multiplier: float = 1.0
    sources: dict[str, str] = field(default_factory=dict)

    def returns_for(self, assets: Sequence[str]) -> np.ndarray:
        missing = [a for a in assets if a not in self.shocks]
        if missing:
            raise ValueError(f"scenario {self.name!r} has no shock for {missing}")
        return np.array([[self.shocks[a] for a in assets]])


def max_drawdown(bars: pd.DataFrame) -> float:
    """Worst fall from a preceding high (or the bar's own open) to a low: ``min(low/peak) − 1``."""
    if bars.empty:
        raise ValueError("bars: empty")
    prior_high = bars["high"].cummax().shift(1)
    peak = np.fmax(prior_high.to_numpy(), bars["open"].to_numpy())
    return float(np.min(bars["low"].to_numpy() / peak) - 1.0)


def _day(bars: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    return bars.loc[(bars.index >= day) & (bars.index < day + pd.Timedelta(days=1))]


def historical_scenarios(
    data_dir: Path, assets: Sequence[str], crash_dates: Sequence[str] = CRASH_DATES
) -> list[Scenario]:
    """The ``1-day`` and ``intraday`` scenario of each crash day (module docstring)."""
    daily = {a: load_daily_bars(data_dir, a) for a in dict.fromkeys([PROXY_ASSET, *assets])}
    scenarios = []
    for date in crash_dates:
        day = pd.Timestamp(date, tz="UTC")
        one_day, one_day_src, intraday, intraday_src = {}, {}, {}, {}
        for asset in assets:
            bars = daily[asset]
            listed = day in bars.index and (day - pd.Timedelta(days=1)) in bars.index
            source_asset = asset if listed else PROXY_ASSET
            src = daily[source_asset]
            note = "" if listed else f" (proxy: {asset} not listed on {date})"
            previous_close = src.loc[day - pd.Timedelta(days=1), "close"]
            one_day[asset] = float(src.loc[day, "close"] / previous_close - 1.0)
            one_day_src[asset] = f"daily close-to-close {source_asset}{note}"
            worst = float(src.loc[day, "low"] / src.loc[day, "open"] - 1.0)
            source = f"daily open-to-low {source_asset}{note}"
            finer = _finer_drawdown(data_dir, source_asset, date, day)
            if finer is not None and finer[0] < worst:
                worst, source = finer[0], f"{finer[1]}{note}"
            intraday[asset], intraday_src[asset] = worst, source
        scenarios.append(Scenario(f"{date} 1-day", one_day, sources=one_day_src))
        scenarios.append(Scenario(f"{date} intraday", intraday, sources=intraday_src))
    return scenarios


def _finer_drawdown(
    data_dir: Path, asset: str, date: str, day: pd.Timestamp
) -> tuple[float, str] | None:
    if asset == "BTC":
        bars = load_minute_bars(data_dir, date)
        return max_drawdown(bars), "1-minute BTCUSDT perpetual, crash window peak-to-trough"
    month = date[:7]
    if (asset, month) in SPOT_HOURLY_FILES:
        bars = _day(load_hourly_bars(data_dir, asset, month), day)
        return max_drawdown(bars), f"1-hour {asset}USDT spot, peak-to-trough on {date}"
    return None


def hypothetical_scenarios(
    assets: Sequence[str],
    uniform_moves: Sequence[float] = (-0.10, -0.20, -0.30, -0.50, 0.20, 0.50),
    vol_multipliers: Sequence[float] = (2.0,),
) -> list[Scenario]:
    """Every asset ``x`` (each of ``uniform_moves``); option vols ×``k`` with prices unchanged."""
    scenarios = [
        Scenario(f"all assets {move:+.0%}", dict.fromkeys(assets, move)) for move in uniform_moves
    ]
    scenarios += [
        Scenario(f"option vol x{k:g}", dict.fromkeys(assets, 0.0), vol_multiplier=k)
        for k in vol_multipliers
    ]
    return scenarios


def run_scenarios(
    table: InstrumentTable, quantities: np.ndarray, scenarios: Sequence[Scenario]
) -> pd.DataFrame:
    """Portfolio P&L (USD) under each scenario, with each asset's shock: one row per scenario."""
    rows = []
    for scenario in scenarios:
        per_contract = unit_pnl(
            table, scenario.returns_for(table.assets), 0, scenario.vol_multiplier
        )
        row = {"scenario": scenario.name, "pnl": float(per_contract[0] @ quantities)}
        row["vol_multiplier"] = scenario.vol_multiplier
        row.update({f"shock_{a}": scenario.shocks[a] for a in table.assets})
        rows.append(row)
    return pd.DataFrame(rows).set_index("scenario")


def stressed_covariance(
    covariance: np.ndarray, vol_multiplier: float = 1.0, correlation_to_one: bool = False
) -> np.ndarray:
    """``Σ`` with every volatility ×``k`` and, optionally, every correlation set to 1."""
    sigma = np.sqrt(np.diag(covariance)) * vol_multiplier
    if correlation_to_one:
        return np.outer(sigma, sigma)
    return covariance * vol_multiplier**2


def stressed_var(
    table: InstrumentTable,
    quantities: np.ndarray,
    covariance: np.ndarray,
    confidence: float = 0.99,
    paths: int = 20_000,
    seed: int = 1,
    vol_multiplier: float = 1.0,
) -> tuple[float, float]:
    """1-day VaR and ES by normal Monte Carlo under ``covariance`` (full revaluation).

    ``vol_multiplier`` also scales the options' implied volatilities.
    """
    draws = simulate_log_returns(covariance, paths, 1, Innovation.NORMAL, None, seed)
    pnl = unit_pnl(table, np.expm1(draws), 1, vol_multiplier) @ quantities
    var, es = var_es(pnl, confidence)
    return float(var), float(es)


@dataclass(frozen=True)
class ReverseStress:
    """Smallest uniform move down / up whose loss reaches ``buffer`` (None: not within range)."""

    buffer: float
    move_down: float | None
    move_up: float | None


def reverse_stress(
    table: InstrumentTable,
    quantities: np.ndarray,
    buffer: float,
    vol_multiplier: float = 1.0,
    largest_down: float = -0.99,
    largest_up: float = 5.0,
) -> ReverseStress:
    """The uniform moves closest to 0 at which the portfolio loses ``buffer`` (module doc)."""
    if not buffer > 0.0:
        raise ValueError(f"buffer={buffer!r}: must be a positive amount (USD)")
    n_assets = len(table.assets)

    def shortfall(move: float) -> float:
        returns = np.full((1, n_assets), move)
        return float(unit_pnl(table, returns, 0, vol_multiplier)[0] @ quantities) + buffer

    def first_crossing(edge: float) -> float | None:
        grid = np.linspace(0.0, edge, round(abs(edge) / 0.0025) + 1)
        values = unit_pnl(table, np.repeat(grid[:, None], n_assets, axis=1), 0, vol_multiplier)
        excess = values @ quantities + buffer
        below = np.flatnonzero(excess <= 0.0)
        if below.size == 0:
            return None
        i = int(below[0])
        if i == 0:
            return 0.0
        return float(optimize.brentq(shortfall, grid[i - 1], grid[i], xtol=1e-10))

    return ReverseStress(buffer, first_crossing(largest_down), first_crossing(largest_up))
