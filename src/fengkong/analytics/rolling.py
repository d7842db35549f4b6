"""Rolling out-of-sample VaR forecasts over real history, and their backtest.

A portfolio of constant USD exposures ``w`` (rebalanced daily) realizes on day ``t`` the P&L
``Σ_a w_a (e^{r_{t,a}} − 1)``. Each method forecasts the 1-day VaR for day ``t`` from the
returns *before* ``t`` only:

* ``ewma``: normal closed form with the RiskMetrics forecast ``Σ_{t|t−1}``
  (:mod:`fengkong.analytics.ewma`, :mod:`fengkong.analytics.parametric`);
* ``hs``: the P&L of the last ``window`` days' returns;
* ``fhs``: per-asset GARCH(1,1) re-estimated every ``refit_every`` days on the last ``window``
  days (Gaussian QMLE, ``arch``); between re-estimations the parameters are held and the
  variance recursion runs on, day by day, so ``σ_{t}`` always uses the return of ``t − 1``.
  Scenarios: the window's standardized residuals re-scaled by ``σ_t``
  (:mod:`fengkong.analytics.fhs`).

Forecasts start once ``window`` days of returns precede the day, so every method is judged
on the same days.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from fengkong.analytics.backtest import (
    christoffersen_conditional_coverage,
    christoffersen_independence,
    exceptions,
    kupiec_pof,
    traffic_light,
)
from fengkong.analytics.ewma import RISKMETRICS_DAILY_LAMBDA, ewma_covariance_path
from fengkong.analytics.fhs import fit_garch, garch_variance_path
from fengkong.analytics.measure import Method
from fengkong.analytics.parametric import parametric_var_es
from fengkong.analytics.tail import var_es

__all__ = ["ROLLING_METHODS", "backtest_summary", "rolling_var"]

ROLLING_METHODS = (Method.EWMA, Method.HS, Method.FHS)


def _pnl(exposures: np.ndarray, log_returns: np.ndarray) -> np.ndarray:
    return np.expm1(log_returns) @ exposures


def _ewma(returns: np.ndarray, exposures: np.ndarray, confidence: float, decay: float):
    path = ewma_covariance_path(returns, decay)  # row t: forecast for t + 1
    sigma = np.sqrt(np.einsum("a,tab,b->t", exposures, path, exposures))
    forecast_sigma = np.concatenate([[np.nan], sigma[:-1]])  # for day t, made at t − 1
    var, _ = parametric_var_es(forecast_sigma, confidence)
    return var


def _fhs(
    returns: np.ndarray,
    exposures: np.ndarray,
    confidence: float,
    window: int,
    refit_every: int,
    tick: Callable[[], None],
) -> np.ndarray:
    days, assets = returns.shape
    out = np.full(days, np.nan)
    for refit in range(window, days, refit_every):
        stop = min(refit + refit_every, days)
        start = refit - window
        params = [fit_garch(returns[start:refit, a]) for a in range(assets)]
        # σ² for days start..stop (last entry: the day after stop − 1), parameters held
        variance = np.column_stack(
            [garch_variance_path(returns[start:stop, a], p) for a, p in enumerate(params)]
        )
        sigma = np.sqrt(variance)
        residuals = returns[start:stop] / sigma[:-1]
        for t in range(refit, stop):
            local = t - start
            z = residuals[local - window : local]
            scenarios = _pnl(exposures, z * sigma[local])
            out[t] = var_es(scenarios, confidence)[0]
            tick()
    return out


def _hs(returns: np.ndarray, exposures: np.ndarray, confidence: float, window: int) -> np.ndarray:
    pnl = _pnl(exposures, returns)
    out = np.full(len(returns), np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(pnl, window)[:-1]  # window before t
    out[window:] = var_es(windows, confidence)[0]
    return out


def rolling_var(
    log_returns: pd.DataFrame,
    exposures: Sequence[float] | np.ndarray,
    confidence: float = 0.99,
    methods: Sequence[Method] = ROLLING_METHODS,
    window: int = 1000,
    refit_every: int = 20,
    decay: float = RISKMETRICS_DAILY_LAMBDA,
    progress: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Realized P&L and each method's VaR forecast for every day after the first ``window``.

    ``progress`` is called once per FHS day forecast (the slow part).
    """
    w = np.asarray(exposures, dtype=float)
    returns = log_returns.to_numpy()
    if returns.shape[1] != w.size:
        raise ValueError(f"exposures: {w.size} values for {returns.shape[1]} assets")
    if returns.shape[0] <= window + 1:
        raise ValueError(f"window={window}: only {returns.shape[0]} days of returns")
    tick = progress or (lambda: None)
    frame = pd.DataFrame({"pnl": _pnl(w, returns)}, index=log_returns.index.rename("date"))
    for method in methods:
        method = Method(method)
        if method is Method.EWMA:
            frame["var_ewma"] = _ewma(returns, w, confidence, decay)
        elif method is Method.HS:
            frame["var_hs"] = _hs(returns, w, confidence, window)
        elif method is Method.FHS:
            frame["var_fhs"] = _fhs(returns, w, confidence, window, refit_every, tick)
        else:
            raise ValueError(f"method={method.value!r}: rolling backtests support ewma, hs, fhs")
    return frame.iloc[window:]


def backtest_summary(forecasts: pd.DataFrame, confidence: float = 0.99) -> pd.DataFrame:
    """One row per method: exceptions, Kupiec / Christoffersen LR and p-values, Basel zones.

    ``zone`` judges the whole sample by the Basel binomial rule; ``zone_last_250`` the last
    250 days, the standard Basel window (with its plus factor at 99%).
    """
    p = 1.0 - confidence
    rows = []
    for column in [c for c in forecasts.columns if c.startswith("var_")]:
        hits = exceptions(forecasts["pnl"].to_numpy(), forecasts[column].to_numpy())
        pof = kupiec_pof(hits, p)
        ind = christoffersen_independence(hits)
        cc = christoffersen_conditional_coverage(hits, p)
        whole = traffic_light(int(hits.sum()), hits.size, p)
        recent = traffic_light(int(hits[-250:].sum()), min(250, hits.size), p)
        rows.append(
            {
                "method": column.removeprefix("var_"),
                "first_day": forecasts.index[0].date().isoformat(),
                "last_day": forecasts.index[-1].date().isoformat(),
                "days": hits.size,
                "exceptions": int(hits.sum()),
                "expected": hits.size * p,
                "rate": hits.mean(),
                "kupiec_lr": pof.statistic,
                "kupiec_p": pof.pvalue,
                "christoffersen_ind_lr": ind.statistic,
                "christoffersen_ind_p": ind.pvalue,
                "christoffersen_cc_lr": cc.statistic,
                "christoffersen_cc_p": cc.pvalue,
                "zone": whole.zone.value,
                "exceptions_last_250": recent.exceptions,
                "zone_last_250": recent.zone.value,
                "plus_factor_last_250": recent.plus_factor,
            }
        )
    return pd.DataFrame(rows).set_index("method")
