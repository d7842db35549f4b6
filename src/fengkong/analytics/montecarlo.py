"""Seeded Monte Carlo draws of multi-asset returns with a given covariance.

Multivariate Student-t with ``ν > 2`` degrees of freedom and covariance ``Σ`` (McNeil, Frey &
Embrechts 2005, §3.2.1, normal variance mixture)::

    X = √((ν − 2) / W) · L Z,    Z ~ N(0, I),  W ~ χ²_ν,  L Lᵀ = Σ

so that ``Cov(X) = (ν − 2) E[1/W] Σ = Σ``. Normal innovations: ``X = L Z``. Draws are 1-day
log returns; an ``h``-day scenario is the sum of ``h`` independent 1-day draws (no
square-root-of-time shortcut: the sum of t draws is not t). The generator is numpy's PCG64
seeded with ``seed``: the same seed, paths and inputs give the same draws on every machine.

Statistical error: the empirical ``c``-quantile of ``n`` draws has standard error
``√(α(1−α)/n) / f(q)`` (``f`` the density at the quantile, ``α = 1 − c``); see
:func:`quantile_standard_error`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from fengkong.analytics.parametric import Innovation

__all__ = [
    "DEFAULT_PATHS",
    "DEFAULT_SEED",
    "covariance_factor",
    "normal_quantile_standard_error",
    "quantile_standard_error",
    "simulate_log_returns",
]

DEFAULT_PATHS = 20_000
DEFAULT_SEED = 1


def simulate_log_returns(
    covariance: np.ndarray,
    paths: int = DEFAULT_PATHS,
    horizon_days: int = 1,
    innovation: Innovation | str = Innovation.STUDENT_T,
    dof: float | None = 5.0,
    seed: int = DEFAULT_SEED,
) -> np.ndarray:
    """``paths`` draws of the ``horizon_days`` log return of each asset: shape ``(paths, A)``."""
    cov = np.asarray(covariance, dtype=float)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"covariance.shape={cov.shape}: must be square")
    if paths < 1:
        raise ValueError(f"paths={paths!r}: must be at least 1")
    if horizon_days < 1:
        raise ValueError(f"horizon_days={horizon_days!r}: must be at least 1")
    if not np.isfinite(cov).all():
        raise ValueError("covariance: must be finite")
    kind = Innovation(innovation)
    if kind is Innovation.STUDENT_T and (dof is None or not dof > 2.0):
        raise ValueError(f"dof={dof!r}: Student-t needs more than 2 degrees of freedom")
    factor = covariance_factor(cov)
    rng = np.random.default_rng(seed)
    total = np.zeros((paths, cov.shape[0]))
    for _ in range(horizon_days):
        draws = rng.standard_normal((paths, cov.shape[0])) @ factor.T
        if kind is Innovation.STUDENT_T:
            mixing = rng.chisquare(dof, size=(paths, 1))
            draws *= np.sqrt((dof - 2.0) / mixing)
        total += draws
    return total


def covariance_factor(covariance: np.ndarray) -> np.ndarray:
    """``L`` with ``L Lᵀ = Σ``: Cholesky, or for a singular ``Σ`` (correlations stressed to 1)
    the eigen-factor ``V √Λ``. Refuses a matrix with a clearly negative eigenvalue."""
    try:
        return np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(covariance)
    if values.min() < -1e-12 * max(values.max(), 1.0):
        raise ValueError(f"covariance: not positive semi-definite (eigenvalue {values.min()})")
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def quantile_standard_error(confidence: float, paths: int, density_at_quantile: float) -> float:
    """``√(α(1−α)/n) / f(q)``: st. error of an empirical quantile (asymptotic, i.i.d. draws)."""
    alpha = 1.0 - confidence
    return math.sqrt(alpha * (1.0 - alpha) / paths) / density_at_quantile


def normal_quantile_standard_error(confidence: float, paths: int, sigma: float) -> float:
    """:func:`quantile_standard_error` for a normal P&L with st. dev. ``sigma``."""
    q = stats.norm.ppf(confidence)
    return quantile_standard_error(confidence, paths, stats.norm.pdf(q) / sigma)
