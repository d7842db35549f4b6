"""Raw SVI smile of one expiry: total variance, its derivatives, Gatheral's ``g``, calibration.

Raw SVI (Gatheral 2004; Gatheral & Jacquier 2014, "Arbitrage-free SVI volatility surfaces",
Quantitative Finance 14(1), eq. 3.1) gives the total implied variance ``w = σ_BS² t`` at
log-moneyness ``k = ln(K/F)``::

    w(k) = a + b (ρ (k − m) + √((k − m)² + σ²))

valid when ``b ≥ 0``, ``|ρ| < 1``, ``σ > 0`` and the minimum ``a + b σ √(1 − ρ²) ≥ 0``
(:meth:`SviParams.min_variance`). With ``u = k − m`` and ``r = √(u² + σ²)``::

    w'(k) = b (ρ + u / r),      w''(k) = b σ² / r³

**Butterfly arbitrage** (Gatheral & Jacquier 2014, Lemma 2.2, eq. 2.1): the slice is free of
it iff the density ``g`` is non-negative everywhere (and ``w > 0``, and ``d₊ → −∞``, which
SVI's linear wings satisfy when the slope bound below holds)::

    g(k) = (1 − k w' / (2 w))² − (w'² / 4)(1 / w + 1 / 4) + w'' / 2

In the wings ``w' → b(1 ± ρ)`` and ``g → 1/4 − b²(1 ± ρ)² / 16``, so ``g ≥ 0`` at ±∞ iff
``b (1 + |ρ|) ≤ 2`` (Roger Lee's moment bound on the slope of total variance).

**Calibration** (:func:`fit_svi`): weighted least squares on total variance, quasi-explicit
(Zeliade 2009: exact linear inner problem at fixed ``(m, σ)``, Nelder-Mead outside), then a
short :func:`scipy.optimize.least_squares` polish over ``(v, b, ρ, m, σ)`` where
``v = a + b σ √(1 − ρ²)`` is the minimum of ``w``: the validity conditions are then plain box
bounds (``v ≥ 0``, ``0 ≤ b ≤ 2``, ``|ρ| ≤ 0.999``, ``σ ≥ 1e-4``). Deterministic.
:func:`fit_svi_constrained` re-fits from a starting point with hard inequality constraints
(SLSQP, analytic Jacobians): ``g(k_i) ≥ 0`` on a grid, the Lee
bound, and ``w(k_i) ≥ floor_i`` (the previous expiry's total variance: calendar spread).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.optimize import least_squares, lsq_linear, minimize

__all__ = [
    "SviParameterError",
    "SviParams",
    "butterfly_g",
    "fit_svi",
    "fit_svi_constrained",
]

_RHO_MAX = 0.999
_SIGMA_MIN = 1e-4
_SIGMA_MAX = 5.0
_B_MAX = 2.0  # b (1 + |ρ|) ≤ 2 implies b ≤ 2
_CONSTRAINT_MARGIN = 1e-9  # the constrained fit asks for g, w − floor ≥ this, so ≥ 0 survives


class SviParameterError(ValueError):
    """Raw SVI parameters outside their valid domain; names the field, value and why."""

    def __init__(self, field: str, value: float, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"{field}={value!r}: {reason}")


class SviParams(NamedTuple):
    """Raw SVI parameters of one slice (module docstring); ``check()`` validates them."""

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    @property
    def min_variance(self) -> float:
        """``min_k w(k) = a + b σ √(1 − ρ²)``."""
        return self.a + self.b * self.sigma * math.sqrt(1.0 - self.rho * self.rho)

    @property
    def wing_slope(self) -> float:
        """Steepest asymptotic slope of ``w``: ``b (1 + |ρ|)`` (Lee: at most 2)."""
        return self.b * (1.0 + abs(self.rho))

    def check(self) -> SviParams:
        """Return self when the slice is a valid raw SVI, else raise SviParameterError."""
        values = {"a": self.a, "b": self.b, "rho": self.rho, "m": self.m, "sigma": self.sigma}
        for field, value in values.items():
            if not math.isfinite(value):
                raise SviParameterError(field, value, "must be finite")
        if self.b < 0.0:
            raise SviParameterError("b", self.b, "must be >= 0")
        if not abs(self.rho) < 1.0:
            raise SviParameterError("rho", self.rho, "must satisfy |rho| < 1")
        if not self.sigma > 0.0:
            raise SviParameterError("sigma", self.sigma, "must be > 0")
        if self.min_variance < 0.0:
            raise SviParameterError(
                "a", self.a, f"minimum total variance a + b sigma sqrt(1 - rho^2) = "
                f"{self.min_variance!r} < 0",
            )  # fmt: skip
        return self

    def total_variance(self, k: np.ndarray | float) -> np.ndarray:
        """``w(k)``, vectorized over ``k``."""
        u = np.asarray(k, dtype=float) - self.m
        return self.a + self.b * (self.rho * u + np.sqrt(u * u + self.sigma * self.sigma))

    def derivatives(self, k: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(w, w', w'')`` at ``k`` (module docstring)."""
        u = np.asarray(k, dtype=float) - self.m
        r = np.sqrt(u * u + self.sigma * self.sigma)
        w = self.a + self.b * (self.rho * u + r)
        return w, self.b * (self.rho + u / r), self.b * self.sigma * self.sigma / (r * r * r)


def butterfly_g(k: np.ndarray, w: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Gatheral & Jacquier (2014) eq. 2.1: ``(1 − k w'/2w)² − (w'²/4)(1/w + 1/4) + w''/2``.

    ``w`` must be positive; a non-positive ``w`` gives ``-inf`` (no valid density there)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (1.0 - k * w1 / (2.0 * w)) ** 2 - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
    return np.where(w > 0.0, g, -np.inf)


def _to_raw(x: np.ndarray) -> SviParams:
    v, b, rho, m, sigma = (float(value) for value in x)
    return SviParams(v - b * sigma * math.sqrt(1.0 - rho * rho), b, rho, m, sigma)


def _model(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    v, b, rho, m, sigma = x
    u = k - m
    return v - b * sigma * math.sqrt(1.0 - rho * rho) + b * (rho * u + np.sqrt(u * u + sigma**2))


def _jacobian(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``∂w/∂(v, b, ρ, m, σ)`` at each ``k``, shape ``(len(k), 5)``."""
    _, b, rho, m, sigma = x
    s = math.sqrt(1.0 - rho * rho)
    u = k - m
    r = np.sqrt(u * u + sigma * sigma)
    return np.column_stack(
        (
            np.ones_like(k),
            rho * u + r - sigma * s,
            b * (u + sigma * rho / s),
            -b * (rho + u / r),
            b * (sigma / r - s),
        )
    )


def _g_jacobian(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``∂g/∂(v, b, ρ, m, σ)`` at each ``k`` by the chain rule through ``(w, w', w'')``."""
    _, b, rho, m, sigma = x
    u = k - m
    r = np.sqrt(u * u + sigma * sigma)
    r3 = r * r * r
    w, w1, _ = _to_raw(x).derivatives(k)
    big_a = 1.0 - k * w1 / (2.0 * w)
    dg_dw = big_a * k * w1 / (w * w) + w1 * w1 / (4.0 * w * w)
    dg_dw1 = -big_a * k / w - 0.5 * w1 * (1.0 / w + 0.25)
    zero = np.zeros_like(k)
    dw1 = np.column_stack(
        (zero, rho + u / r, np.full_like(k, b), -b * sigma**2 / r3, -b * u * sigma / r3)
    )
    dw2 = np.column_stack(
        (
            zero,
            sigma**2 / r3,
            zero,
            3.0 * b * sigma**2 * u / r3 / (r * r),
            b * (2.0 * sigma / r3 - 3.0 * sigma**3 / (r3 * r * r)),
        )
    )
    return dg_dw[:, None] * _jacobian(x, k) + dg_dw1[:, None] * dw1 + 0.5 * dw2


def _bounds(k: np.ndarray, w: np.ndarray) -> tuple[list[float], list[float]]:
    span = max(float(k.max() - k.min()), 0.1)
    lower = [0.0, 0.0, -_RHO_MAX, float(k.min()) - span, _SIGMA_MIN]
    upper = [float(w.max()) * 2.0, _B_MAX, _RHO_MAX, float(k.max()) + span, _SIGMA_MAX]
    return lower, upper


def _inner(
    m: float, sigma: float, k: np.ndarray, w: np.ndarray, root_w: np.ndarray, a_max: float
) -> tuple[float, np.ndarray]:
    """Zeliade's inner problem at fixed ``(m, σ)``: ``w = a + p φ₊(y) + q φ₋(y)``, ``y = (k −
    m)/σ``, ``φ± = (√(y² + 1) ± y)/2`` is linear in ``(a, p, q)`` with ``p = bσ(1 + ρ)``,
    ``q = bσ(1 − ρ)``; box ``a ∈ [0, a_max]``, ``p, q ∈ [0, 2σ]`` (Lee's bound per wing).
    Returns the weighted squared error and ``(a, p, q)``."""
    y = (k - m) / sigma
    root = np.sqrt(y * y + 1.0)
    design = np.column_stack((np.ones_like(y), 0.5 * (root + y), 0.5 * (root - y)))
    lhs, rhs = design * root_w[:, None], w * root_w
    lower, upper = np.zeros(3), np.array([a_max, 2.0 * sigma, 2.0 * sigma])
    x = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    if not ((x >= lower) & (x <= upper)).all():
        x = lsq_linear(lhs, rhs, bounds=(lower, upper), method="bvls").x
    r = lhs @ x - rhs
    return float(r @ r), x


def _from_inner(m: float, sigma: float, a: float, p: float, q: float) -> np.ndarray:
    """``(a, p, q)`` at ``(m, σ)`` as the search vector ``(v, b, ρ, m, σ)``."""
    b = (p + q) / (2.0 * sigma)
    rho = 0.0 if p + q == 0.0 else min(max((p - q) / (p + q), -_RHO_MAX), _RHO_MAX)
    return np.array([a + b * sigma * math.sqrt(1.0 - rho * rho), b, rho, m, sigma])


def fit_svi(k: np.ndarray, w: np.ndarray, weights: np.ndarray) -> SviParams:
    """Raw SVI minimising ``Σ weights (w_SVI(k) − w)²`` under the validity bounds.

    Quasi-explicit calibration (Zeliade Systems 2009, "Quasi-explicit calibration of Gatheral's
    SVI model"): a bounded Nelder-Mead over ``(m, σ)``, started from the best point of a fixed
    grid, with the linear inner problem (:func:`_inner`) solved exactly at each point; then a
    short :func:`scipy.optimize.least_squares` polish over all five parameters, which may also
    reach ``a < 0`` where ``a + bσ√(1 − ρ²) ≥ 0`` still holds. ``k``, ``w`` (positive) and
    ``weights`` (non-negative, not all zero) are 1-D arrays of equal length with at least five
    distinct ``k``; the caller checks them. Deterministic.
    """
    root_w = np.sqrt(weights / weights.sum()) / float(w.mean())
    lower, upper = _bounds(k, w)
    a_max = float(w.max())

    def outer(z: np.ndarray) -> float:
        return _inner(float(z[0]), float(z[1]), k, w, root_w, a_max)[0]

    starts = [
        (m, sigma)
        for m in np.linspace(lower[3], upper[3], 9)
        for sigma in (0.01, 0.03, 0.1, 0.3, 1.0)
    ]
    z0 = min(starts, key=lambda z: outer(np.array(z)))
    search = minimize(
        outer,
        np.array(z0),
        method="Nelder-Mead",
        bounds=[(lower[3], upper[3]), (_SIGMA_MIN, _SIGMA_MAX)],
        options={"xatol": 1e-10, "fatol": 1e-16, "maxiter": 2_000},
    )
    m, sigma = (float(value) for value in search.x)
    x0 = np.clip(_from_inner(m, sigma, *_inner(m, sigma, k, w, root_w, a_max)[1]), lower, upper)
    polish = least_squares(
        lambda x: root_w * (_model(x, k) - w),
        x0,
        jac=lambda x: root_w[:, None] * _jacobian(x, k),
        bounds=(lower, upper),
        method="trf",
        x_scale="jac",
        max_nfev=50,
    )
    residual = root_w * (_model(x0, k) - w)
    return _to_raw(polish.x if 2.0 * polish.cost < residual @ residual else x0)


def fit_svi_constrained(
    k: np.ndarray,
    w: np.ndarray,
    weights: np.ndarray,
    start: SviParams,
    grid: np.ndarray,
    floor: np.ndarray | None,
) -> SviParams:
    """Re-fit from ``start`` with hard constraints on ``grid`` (SLSQP): ``g ≥ 0``,
    ``b(1 ± ρ) ≤ 2`` and, when ``floor`` is given, ``w(grid) ≥ floor`` (calendar)."""
    root_w = np.sqrt(weights / weights.sum()) / float(w.mean())
    lower, upper = _bounds(k, w)
    if floor is not None:  # the floor may need a higher minimum than the data's range
        upper[0] = max(upper[0], float(floor.max()) * 2.0)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        r = root_w * (_model(x, k) - w)
        return float(r @ r), 2.0 * (r * root_w) @ _jacobian(x, k)

    def g_on_grid(x: np.ndarray) -> np.ndarray:
        p = _to_raw(x)
        return butterfly_g(grid, *p.derivatives(grid)) - _CONSTRAINT_MARGIN

    constraints = [
        {"type": "ineq", "fun": g_on_grid, "jac": lambda x: _g_jacobian(x, grid)},
        {"type": "ineq", "fun": lambda x: np.array([2.0 - x[1] * (1.0 + x[2]),
                                                    2.0 - x[1] * (1.0 - x[2])])},
    ]  # fmt: skip
    if floor is not None:
        constraints.append(
            {
                "type": "ineq",
                "fun": lambda x: _model(x, grid) - floor - _CONSTRAINT_MARGIN,
                "jac": lambda x: _jacobian(x, grid),
            }
        )
    v0 = max(start.min_variance, 0.0)
    x0 = np.clip([v0, start.b, start.rho, start.m, start.sigma], lower, upper)
    if floor is not None:  # a feasible start for the calendar constraint: lift the level
        x0[0] += max(0.0, float(np.max(floor - _model(x0, grid)))) + 1e-6
        x0[0] = min(x0[0], upper[0])
    result = minimize(
        objective,
        x0,
        jac=True,
        method="SLSQP",
        bounds=list(zip(lower, upper, strict=True)),
        constraints=constraints,
        options={"maxiter": 500, "ftol": 1e-14},
    )
    return _to_raw(result.x)
