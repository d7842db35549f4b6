"""Exponentially weighted (RiskMetrics) volatility and covariance.

RiskMetrics — Technical Document, J.P. Morgan/Reuters, 4th ed. 1996, §5.2.1, eq. 5.20 (zero
mean, decay ``λ = 0.94`` for daily data)::

    Σ_{t+1|t} = λ Σ_{t|t−1} + (1 − λ) r_t r_tᵀ

``Σ_{t+1|t}`` is the forecast for day ``t + 1`` made with the returns up to day ``t``. The
recursion starts from the zero-mean sample covariance of the first ``seed`` returns (whose
weight after ``n`` more days is ``λⁿ``: below 2·10⁻⁷ after 250 days).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "RISKMETRICS_DAILY_LAMBDA",
    "ewma_covariance",
    "ewma_covariance_path",
    "ewma_variance_path",
]

RISKMETRICS_DAILY_LAMBDA = 0.94


def _check_lambda(decay: float) -> None:
    if not (0.0 < decay < 1.0):
        raise ValueError(f"decay={decay!r}: must be strictly between 0 and 1")


def ewma_covariance_path(
    returns: np.ndarray, decay: float = RISKMETRICS_DAILY_LAMBDA, seed: int = 25
) -> np.ndarray:
    """Forecast covariances ``Σ_{t+1|t}`` for every ``t``: shape ``(T, A, A)``.

    Row ``t`` uses returns ``0..t``; row ``T − 1`` is the forecast for the day after the data.
    """
    _check_lambda(decay)
    r = np.asarray(returns, dtype=float)
    if r.ndim != 2 or r.shape[0] < seed:
        raise ValueError(f"returns.shape={r.shape}: need (days, assets) with at least {seed} days")
    if not np.isfinite(r).all():
        raise ValueError("returns: must be finite (align prices and handle gaps first)")
    path = np.empty((r.shape[0], r.shape[1], r.shape[1]))
    current = r[:seed].T @ r[:seed] / seed
    for t in range(r.shape[0]):
        current = decay * current + (1.0 - decay) * np.outer(r[t], r[t])
        path[t] = current
    return path


def ewma_covariance(
    returns: np.ndarray, decay: float = RISKMETRICS_DAILY_LAMBDA, seed: int = 25
) -> np.ndarray:
    """Today's forecast covariance for tomorrow, ``Σ_{T+1|T}``, from ``returns`` (days × assets)."""
    return ewma_covariance_path(returns, decay, seed)[-1]


def ewma_variance_path(
    returns: np.ndarray, decay: float = RISKMETRICS_DAILY_LAMBDA, seed: int = 25
) -> np.ndarray:
    """Forecast variances ``σ²_{t+1|t}`` of one return series (the 1-asset case, O(T))."""
    _check_lambda(decay)
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.shape[0] < seed:
        raise ValueError(f"returns.shape={r.shape}: need one series of at least {seed} days")
    if not np.isfinite(r).all():
        raise ValueError("returns: must be finite (align prices and handle gaps first)")
    out = np.empty_like(r)
    current = float(r[:seed] @ r[:seed] / seed)
    for t, value in enumerate(r):
        current = decay * current + (1.0 - decay) * value * value
        out[t] = current
    return out
