"""Closed-form (variance–covariance) VaR and expected shortfall of a linear P&L.

For P&L ``X = μ + σ Z`` with ``Z`` of zero mean and unit variance, ``α = 1 − c``:

* Normal (RiskMetrics 1996, §6.2)::

      VaR = σ Φ⁻¹(c) − μ,        ES = σ φ(Φ⁻¹(c)) / α − μ

* Student-t with ``ν > 2`` degrees of freedom, scaled to unit variance (McNeil, Frey &
  Embrechts 2005, *Quantitative Risk Management*, Example 2.19, eq. 2.21; the factor
  ``√((ν−2)/ν)`` turns a standard t into unit variance)::

      q   = t_ν⁻¹(c)
      VaR = σ √((ν−2)/ν) q − μ
      ES  = σ √((ν−2)/ν) · g_ν(q) / α · (ν + q²) / (ν − 1) − μ

  with ``g_ν`` the standard t density.

Horizon ``h`` days: ``σ_h = σ √h`` (square-root-of-time, i.i.d. returns; RiskMetrics §6.3)
and ``μ_h = μ h``.
"""

from __future__ import annotations

import enum
import math

import numpy as np
from scipy import stats

__all__ = ["Innovation", "fit_student_t_dof", "parametric_var_es", "portfolio_sigma"]


class Innovation(enum.StrEnum):
    NORMAL = "normal"
    STUDENT_T = "t"


def portfolio_sigma(exposures: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """``σ = √(wᵀ Σ w)`` of the P&L of exposures ``w`` (``(A,)`` or ``(portfolios, A)``)."""
    w = np.atleast_2d(np.asarray(exposures, dtype=float))
    sigma = np.sqrt(np.einsum("pa,ab,pb->p", w, covariance, w))
    return sigma[0] if np.ndim(exposures) == 1 else sigma


def parametric_var_es(
    sigma: float | np.ndarray,
    confidence: float,
    horizon_days: int = 1,
    innovation: Innovation | str = Innovation.NORMAL,
    dof: float | None = None,
    mean: float | np.ndarray = 0.0,
) -> tuple[float | np.ndarray, float | np.ndarray]:
    """VaR and ES (positive = loss) of a P&L with 1-day st. dev. ``sigma`` and 1-day ``mean``."""
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence={confidence!r}: must be strictly between 0 and 1")
    if horizon_days < 1:
        raise ValueError(f"horizon_days={horizon_days!r}: must be at least 1")
    kind = Innovation(innovation)
    alpha = 1.0 - confidence
    scale = np.asarray(sigma, dtype=float) * math.sqrt(horizon_days)
    drift = np.asarray(mean, dtype=float) * horizon_days
    if kind is Innovation.NORMAL:
        q = stats.norm.ppf(confidence)
        var_factor, es_factor = q, stats.norm.pdf(q) / alpha
    else:
        if dof is None or not dof > 2.0:
            raise ValueError(f"dof={dof!r}: Student-t needs more than 2 degrees of freedom")
        q = stats.t.ppf(confidence, dof)
        unit = math.sqrt((dof - 2.0) / dof)
        var_factor = unit * q
        es_factor = unit * stats.t.pdf(q, dof) / alpha * (dof + q * q) / (dof - 1.0)
    var = scale * var_factor - drift
    es = scale * es_factor - drift
    if np.ndim(var) == 0:
        return float(var), float(es)
    return var, es


def fit_student_t_dof(standardized: np.ndarray) -> float:
    """Degrees of freedom of a zero-mean Student-t fitted by maximum likelihood (scipy).

    ``standardized`` are returns divided by their forecast volatility (pooled over assets);
    the fit leaves the scale free, so the tail shape is read from the data.
    """
    z = np.asarray(standardized, dtype=float).ravel()
    z = z[np.isfinite(z)]
    if z.size < 100:
        raise ValueError(f"standardized: {z.size} values; need at least 100 to fit a t tail")
    dof, _, _ = stats.t.fit(z, floc=0.0)
    return float(dof)
