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
    "BookRisk",
    "MarketHistory",
    "Method",
    "PortfolioRisk",
    "RiskSettings",
    "load_market_history",
    "measure",
    "measure_book",
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
    """How to measure. ``innovation`` left as None means Student-t for ``mc`` (multivariate t)
    and normal for ``ewma`` (RiskMetrics); hs and fhs use no distribution."""

    method: Method = Method.HS
    confidences: tuple[float, ...] = DEFAULT_CONFIDENCES
    horizon_days: int = 1
    window: int = DEFAULT_WINDOW
    decay: float = RISKMETRICS_DAILY_LAMBDA
    innovation: Innovation | None = None
    dof: float | None = None
    paths: int = DEFAULT_PATHS
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", Method(self.method))
        if self.innovation is None:
            default = Innovation.STUDENT_T if self.method is Method.MC else Innovation.NORMAL
            object.__setattr__(self, "innovation", default)
        else:
            object.__setattr__(self, "innovation", Innovation(self.innovation))
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
class BookRisk:
    """VaR / ES of several portfolios valued together (one array computation).

    ``table``: one row per (portfolio, confidence). ``holdings`` (portfolios × instruments,
    contracts) and ``unit_pnl`` (scenarios × instruments, USD per contract; empty for
    ``ewma``) give any portfolio's scenario P&L as ``unit_pnl @ holdings[p]``.
    """

    table: pd.DataFrame
    exposures: pd.DataFrame
    instruments: InstrumentTable
    holdings: np.ndarray
    unit_pnl: np.ndarray
    dof: float | None


@dataclass(frozen=True)
class PortfolioRisk:
    """VaR / ES per confidence, and the scenario P&L behind them (empty for ``ewma``)."""

    table: pd.DataFrame
    pnl: np.ndarray
    exposures: pd.Series
    dof: float | None


def _holdings(
    portfolios: Sequence[Portfolio], prices: dict[str, float], assets: tuple[str, ...]
) -> tuple[InstrumentTable, np.ndarray]:
    """Distinct instruments across ``portfolios`` (same terms = same column) and holdings."""
    columns: dict[object, int] = {}
    entries = []
    for index, portfolio in enumerate(portfolios):
        for instrument, quantity in zip(
            portfolio.instruments(prices), portfolio.quantities(), strict=True
        ):
            column = columns.setdefault(instrument, len(columns))
            entries.append((index, column, quantity))
    holdings = np.zeros((len(portfolios), len(columns)))
    for row, column, quantity in entries:
        holdings[row, column] += quantity
    return InstrumentTable.build(list(columns), assets), holdings


def measure_book(
    portfolios: Sequence[Portfolio], history: MarketHistory, settings: RiskSettings
) -> BookRisk:
    """VaR and ES of every portfolio by ``settings.method``, valued on the same scenarios."""
    names = [p.name for p in portfolios]
    if len(set(names)) != len(names):
        raise ValueError(f"portfolio names must be unique: {names}")
    assets = tuple(history.log_returns.columns)
    table, holdings = _holdings(portfolios, history.closes.to_dict(), assets)
    exposures = pd.DataFrame(
        [delta_exposures(table, row) for row in holdings], index=names, columns=list(assets)
    )
    dof: float | None = None
    if settings.method is Method.EWMA:
        options = [
            s for s, is_option in zip(table.symbols, table.is_option, strict=True) if is_option
        ]
        if options:
            raise ValueError(
                f"method=ewma is closed-form for linear positions only; {options} are options: "
                "use hs, mc or fhs, which revalue options in full"
            )
        returns = history.log_returns.to_numpy()
        path = ewma_covariance_path(returns, settings.decay)
        sigma = portfolio_sigma(exposures.to_numpy(), path[-1])
        if settings.innovation is Innovation.STUDENT_T:
            dof = _dof(settings, returns[-settings.window :], path)
        results = [
            parametric_var_es(sigma, c, settings.horizon_days, settings.innovation, dof)
            for c in settings.confidences
        ]
        var = np.array([r[0] for r in results])
        es = np.array([r[1] for r in results])
        per_contract = np.empty((0, len(table)))
    else:
        log_moves, dof = scenario_log_returns(history, settings)
        per_contract = unit_pnl(table, np.expm1(log_moves), settings.horizon_days)
        var, es = book_var_es(holdings, per_contract, settings.confidences)
    rows = [
        (name, settings.method.value, c, settings.horizon_days, var[i, p], es[i, p])
        for p, name in enumerate(names)
        for i, c in enumerate(settings.confidences)
    ]
    frame = pd.DataFrame(
        rows, columns=["portfolio", "method", "confidence", "horizon_days", "var", "es"]
    )
    frame["scenarios"] = per_contract.shape[0]
    return BookRisk(frame, exposures, table, holdings, per_contract, dof)


def measure(portfolio: Portfolio, history: MarketHistory, settings: RiskSettings) -> PortfolioRisk:
    """VaR and ES of one portfolio (see :func:`measure_book`), with its scenario P&L."""
    book = measure_book([portfolio], history, settings)
    pnl = book.unit_pnl @ book.holdings[0] if book.unit_pnl.size else np.empty(0)
    table = book.table.drop(columns="portfolio")
    return PortfolioRisk(table, pnl, book.exposures.iloc[0].rename("delta_usd"), book.dof)
