"""VaR and ES of a portfolio from real market history, by each method.

=======  =====================================================================================
method   scenarios of the underlyings' log returns ``r`` (P&L by full revaluation at
         ``R = e^r − 1``, :mod:`fengkong.analytics.revaluation`) or closed form
=======  =====================================================================================
``hs``   historical simulation: the last ``window`` days; ``h`` days: the overlapping sums
         of ``h`` consecutive daily returns in the window (``window − h + 1`` scenarios)
``ewma`` parametric: RiskMetrics EWMA covariance (λ 0.94) of the whole history, P&L
         linear in the delta exposures, normal or Student-t closed form
         (:mod:`fengkong.analytics.parametric`); linear instruments only
``mc``   Monte Carlo: multivariate Student-t (or normal) with the EWMA covariance, seeded
         (:mod:`fengkong.analytics.montecarlo`)
``fhs``  filtered historical simulation: GARCH(1,1) per asset over the window
         (:mod:`fengkong.analytics.fhs`)
=======  =====================================================================================

The Student-t degrees of freedom, unless given, are fitted to the EWMA-standardized returns of
the window (pooled over assets). Everything is a function of the inputs: no clock, and the
random methods take a seed.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fengkong.analytics.book import book_var_es
from fengkong.analytics.ewma import RISKMETRICS_DAILY_LAMBDA, ewma_covariance_path
from fengkong.analytics.fhs import fhs_log_returns, filter_returns
from fengkong.analytics.history import load_daily_closes
from fengkong.analytics.instruments import InstrumentTable
from fengkong.analytics.montecarlo import DEFAULT_PATHS, DEFAULT_SEED, simulate_log_returns
from fengkong.analytics.parametric import (
    Innovation,
    fit_student_t_dof,
    parametric_var_es,
    portfolio_sigma,
)
from fengkong.analytics.portfolio import Portfolio
from fengkong.analytics.returns import AlignmentReport, align_prices
from fengkong.analytics.revaluation import delta_exposures, unit_pnl

__all__ = [
    "DEFAULT_CONFIDENCES",
    "DEFAULT_WINDOW",
    "MarketHistory",
    "Method",
    "PortfolioRisk",
    "RiskSettings",
    "load_market_history",
    "measure",
    "overlapping_sums",
    "scenario_log_returns",
]

DEFAULT_CONFIDENCES = (0.95, 0.99, 0.995)
DEFAULT_WINDOW = 1000


class Method(enum.StrEnum):
    HS = "hs"
    EWMA = "ewma"
    MC = "mc"
    FHS = "fhs"


@dataclass(frozen=True)
class RiskSettings:
    method: Method = Method.HS
    confidences: tuple[float, ...] = DEFAULT_CONFIDENCES
    horizon_days: int = 1
    window: int = DEFAULT_WINDOW
    decay: float = RISKMETRICS_DAILY_LAMBDA
    innovation: Innovation = Innovation.NORMAL
    dof: float | None = None
    paths: int = DEFAULT_PATHS
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.horizon_days not in (1, 10):
            raise ValueError(f"horizon_days={self.horizon_days!r}: supported horizons are 1 and 10")
        if self.window < 250:
            raise ValueError(f"window={self.window!r}: use at least 250 days of history")
        for c in self.confidences:
            if not 0.0 < c < 1.0:
                raise ValueError(f"confidence={c!r}: must be strictly between 0 and 1")


@dataclass(frozen=True)
class MarketHistory:
    """Aligned daily log returns up to ``as_of`` and the closes on ``as_of``."""

    log_returns: pd.DataFrame
    closes: pd.Series
    report: AlignmentReport


def load_market_history(data_dir: Path, assets: Sequence[str], as_of: dt.datetime) -> MarketHistory:
    """Daily closes of ``assets`` up to ``as_of`` (inclusive), aligned, as log returns."""
    as_of_day = pd.Timestamp(as_of).tz_convert("UTC").normalize()
    closes = load_daily_closes(data_dir, tuple(assets))
    aligned = align_prices(closes, end=as_of_day)
    if aligned.prices.index[-1] != as_of_day:
        raise ValueError(
            f"as_of={as_of_day.date()}: no close for every asset on that day "
            f"(last common day {aligned.prices.index[-1].date()})"
        )
    return MarketHistory(aligned.returns("log"), aligned.prices.iloc[-1], aligned.report)


def overlapping_sums(log_returns: np.ndarray, horizon_days: int) -> np.ndarray:
    """Sums of every run of ``horizon_days`` consecutive rows: ``(T − h + 1, A)``."""
    cumulative = np.vstack([np.zeros(log_returns.shape[1]), np.cumsum(log_returns, axis=0)])
    return cumulative[horizon_days:] - cumulative[:-horizon_days]


def _dof(settings: RiskSettings, window_returns: np.ndarray, covariance_path: np.ndarray) -> float:
    if settings.dof is not None:
        return settings.dof
    # σ_{t|t−1}: the forecast made the day before each return of the window
    variance = np.diagonal(covariance_path, axis1=1, axis2=2)
    sigma_before = np.sqrt(variance[-window_returns.shape[0] - 1 : -1])
    return fit_student_t_dof(window_returns / sigma_before)


def scenario_log_returns(
    history: MarketHistory, settings: RiskSettings
) -> tuple[np.ndarray, float | None]:
    """The ``(scenarios, assets)`` log returns of hs, mc or fhs, and the t dof used (mc-t)."""
    returns = history.log_returns.to_numpy()
    if returns.shape[0] < settings.window:
        raise ValueError(
            f"window={settings.window}: only {returns.shape[0]} aligned days of history "
            f"for {tuple(history.log_returns.columns)}"
        )
    window = returns[-settings.window :]
    if settings.method is Method.HS:
        return overlapping_sums(window, settings.horizon_days), None
    if settings.method is Method.FHS:
        filtered = filter_returns(window)
        return fhs_log_returns(filtered, settings.horizon_days, settings.paths, settings.seed), None
    if settings.method is Method.MC:
        path = ewma_covariance_path(returns, settings.decay)
        dof = _dof(settings, window, path) if settings.innovation is Innovation.STUDENT_T else None
        draws = simulate_log_returns(
            path[-1], settings.paths, settings.horizon_days, settings.innovation, dof, settings.seed
        )
        return draws, dof
    raise ValueError(f"method={settings.method.value!r} has no scenarios (closed form)")


@dataclass(frozen=True)
class PortfolioRisk:
    """VaR / ES per confidence, and the scenario P&L behind them (empty for ``ewma``)."""

    table: pd.DataFrame
    pnl: np.ndarray
    exposures: pd.Series
    dof: float | None


def measure(portfolio: Portfolio, history: MarketHistory, settings: RiskSettings) -> PortfolioRisk:
    """VaR and ES of ``portfolio`` by ``settings.method`` (see the module docstring)."""
    assets = tuple(history.log_returns.columns)
    prices = history.closes.to_dict()
    table = InstrumentTable.build(portfolio.instruments(prices), assets)
    quantities = portfolio.quantities()
    exposures = pd.Series(delta_exposures(table, quantities), index=list(assets), name="delta_usd")
    dof: float | None = None
    if settings.method is Method.EWMA:
        if portfolio.has_options:
            symbols = [p.instrument_symbol for p in portfolio.positions if p.option]
            raise ValueError(
                f"method=ewma is closed-form for linear positions only; {symbols} are options: "
                "use hs, mc or fhs, which revalue options in full"
            )
        returns = history.log_returns.to_numpy()
        path = ewma_covariance_path(returns, settings.decay)
        sigma = float(portfolio_sigma(exposures.to_numpy(), path[-1]))
        if settings.innovation is Innovation.STUDENT_T:
            dof = _dof(settings, returns[-settings.window :], path)
        rows = []
        for c in settings.confidences:
            var, es = parametric_var_es(sigma, c, settings.horizon_days, settings.innovation, dof)
            rows.append((c, var, es))
        pnl = np.empty(0)
        scenarios = 0
    else:
        log_moves, dof = scenario_log_returns(history, settings)
        moves = np.expm1(log_moves)
        per_contract = unit_pnl(table, moves, settings.horizon_days)
        pnl = per_contract @ quantities
        var, es = book_var_es(quantities[None, :], per_contract, settings.confidences)
        rows = [(c, var[i, 0], es[i, 0]) for i, c in enumerate(settings.confidences)]
        scenarios = pnl.size
    frame = pd.DataFrame(rows, columns=["confidence", "var", "es"])
    frame.insert(0, "method", settings.method.value)
    frame.insert(2, "horizon_days", settings.horizon_days)
    frame["scenarios"] = scenarios
    return PortfolioRisk(table=frame, pnl=pnl, exposures=exposures, dof=dof)
