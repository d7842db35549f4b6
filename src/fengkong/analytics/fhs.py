"""Filtered historical simulation: GARCH(1,1) per asset, residuals re-scaled by today's volatility.

Barone-Adesi, Giannopoulos & Vosper (1999), "VaR without correlations for portfolios of
derivative securities", J. Futures Markets 19. Per asset, a zero-mean GARCH(1,1) (Bollerslev
1986) is fitted by Gaussian quasi-maximum likelihood (``arch``)::

    σ²_t = ω + α ε²_{t−1} + β σ²_{t−1},     z_t = ε_t / σ_t

The 1-day scenarios are every historical day's vector of standardized residuals re-scaled by
the forecast volatility for tomorrow, ``r_s = σ_{T+1} ⊙ z_s``: one scenario per day of the
window, all assets from the same day, so the cross-asset dependence of the residuals is kept.
For ``h > 1`` days, ``paths`` seeded bootstrap paths draw ``h`` residual days each and carry the
variance forward with the GARCH recursion (the FHS of Barone-Adesi et al.)::

    r_{T+k} = σ_{T+k} z_{d_k},   σ²_{T+k+1} = ω + α r²_{T+k} + β σ²_{T+k},   r = Σ_k r_{T+k}

The recursion starts like ``arch``'s: ``σ²_0 = ω + (α + β) b`` with ``b`` the backcast
variance (exponentially weighted mean of the first squared returns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from arch import arch_model

__all__ = [
    "FilteredReturns",
    "GarchParams",
    "fhs_log_returns",
    "filter_returns",
    "fit_garch",
    "garch_variance_path",
]

_PERCENT = 100.0  # arch's optimiser is best conditioned on returns in percent


@dataclass(frozen=True)
class GarchParams:
    """GARCH(1,1) parameters in return units (``omega`` in return², not percent²)."""

    omega: float
    alpha: float
    beta: float
    backcast: float  # initial variance b, in return²


@dataclass(frozen=True)
class FilteredReturns:
    """Per-asset GARCH filter of a ``(T, A)`` window of log returns."""

    params: tuple[GarchParams, ...]
    sigma: np.ndarray  # (T, A) conditional st. dev. σ_t of each day of the window
    residuals: np.ndarray  # (T, A) standardized residuals z_t
    sigma_next: np.ndarray  # (A,) forecast σ_{T+1}


def fit_garch(returns: np.ndarray) -> GarchParams:
    """Zero-mean GARCH(1,1) Gaussian QMLE of one series of log returns (via ``arch``)."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.size < 100:
        raise ValueError(f"returns.shape={r.shape}: GARCH(1,1) needs one series of >= 100 days")
    model = arch_model(
        r * _PERCENT, mean="Zero", vol="GARCH", p=1, q=1, dist="normal", rescale=False
    )
    result = model.fit(disp="off")
    if result.convergence_flag != 0:
        raise RuntimeError(f"GARCH(1,1) fit did not converge (flag {result.convergence_flag})")
    params = result.params
    return GarchParams(
        omega=float(params["omega"]) / _PERCENT**2,
        alpha=float(params["alpha[1]"]),
        beta=float(params["beta[1]"]),
        backcast=float(model.volatility.backcast(r * _PERCENT)) / _PERCENT**2,
    )


def garch_variance_path(returns: np.ndarray, params: GarchParams) -> np.ndarray:
    """``σ²_t`` for ``t = 0..T`` of ``returns`` (length ``T``); the last value is the forecast."""
    r = np.asarray(returns, dtype=float)
    out = np.empty(r.size + 1)
    out[0] = params.omega + (params.alpha + params.beta) * params.backcast
    for t in range(r.size):
        out[t + 1] = params.omega + params.alpha * r[t] * r[t] + params.beta * out[t]
    return out


def filter_returns(returns: np.ndarray) -> FilteredReturns:
    """Fit GARCH(1,1) to each column of ``returns`` (T × A) and standardize the residuals."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"returns.shape={r.shape}: expected (days, assets)")
    if not np.isfinite(r).all():
        raise ValueError("returns: must be finite (align prices and handle gaps first)")
    params = tuple(fit_garch(r[:, a]) for a in range(r.shape[1]))
    variance = np.column_stack([garch_variance_path(r[:, a], p) for a, p in enumerate(params)])
    sigma = np.sqrt(variance[:-1])
    return FilteredReturns(
        params=params,
        sigma=sigma,
        residuals=r / sigma,
        sigma_next=np.sqrt(variance[-1]),
    )


def fhs_log_returns(
    filtered: FilteredReturns, horizon_days: int = 1, paths: int = 10_000, seed: int = 1
) -> np.ndarray:
    """FHS scenarios of the ``horizon_days`` log return of each asset: ``(scenarios, A)``.

    One day: every residual day re-scaled (``T`` scenarios, no sampling). More days: ``paths``
    seeded bootstrap paths through the GARCH recursion (module docstring).
    """
    if horizon_days < 1:
        raise ValueError(f"horizon_days={horizon_days!r}: must be at least 1")
    z = filtered.residuals
    if horizon_days == 1:
        return z * filtered.sigma_next
    omega = np.array([p.omega for p in filtered.params])
    alpha = np.array([p.alpha for p in filtered.params])
    beta = np.array([p.beta for p in filtered.params])
    rng = np.random.default_rng(seed)
    variance = np.broadcast_to(filtered.sigma_next**2, (paths, z.shape[1])).copy()
    total = np.zeros((paths, z.shape[1]))
    for _ in range(horizon_days):
        step = np.sqrt(variance) * z[rng.integers(0, z.shape[0], size=paths)]
        total += step
        variance = omega + alpha * step * step + beta * variance
    return total
