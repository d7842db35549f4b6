"""Volatility surface of one underlying: raw SVI per expiry, checked free of static arbitrage.

**Fit** (:meth:`VolSurface.fit`): the chain's options are grouped by expiry; each slice is a raw
SVI (:mod:`fengkong.market.svi`) fitted by weighted least squares to the total variance
``w = iv² t`` at ``k = ln(K/F)`` (each option at its own forward), expiries in increasing
order. Each fitted slice is then checked on the dense grid ``k_grid`` (default 601 points on
``[-1.5, 1.5]``, strikes 0.22 F … 4.5 F):

* **butterfly**: Gatheral & Jacquier (2014) ``g(k) ≥ 0`` at every grid point, and the wings
  by Lee's slope bound ``b(1 + |ρ|) ≤ 2`` (which is ``g(±∞) ≥ 0``);
* **calendar**: ``w_i(k) ≥ w_{i−1}(k)`` at every grid point (total variance non-decreasing in
  ``t`` at fixed ``k``; Gatheral & Jacquier 2014, Lemma 2.1, zero rates and forward-moneyness).

A slice that fails is, with ``repair=True`` (default), **re-fitted with the failed conditions
as hard constraints** (SLSQP, :func:`~fengkong.market.svi.fit_svi_constrained`: ``g ≥ 0`` on the
grid, the Lee bound, ``w ≥`` the previous slice on the grid) and checked again; what still
fails, and with ``repair=False`` whatever fails at all, raises :class:`ButterflyArbitrageError`
or :class:`CalendarArbitrageError` naming the expiry, the ``k`` and the offending values.

**Between expiries** total variance is interpolated linearly in ``t`` at fixed ``k``:
``w(k, t) = (1 − α) w_i(k) + α w_{i+1}(k)``, ``α = (t − t_i)/(t_{i+1} − t_i)``. It is
non-decreasing in ``t`` wherever the slices are calendar-free, so it adds no calendar
arbitrage; butterfly-freeness of the blend is not implied in general, so
:meth:`VolSurface.butterfly_g` evaluates ``g`` at any ``t`` (the blend's derivatives are the
same blend of the slices') and the tests check it between every pair of listed expiries.
**Outside the listed expiries** the implied volatility is flat in ``t`` at fixed ``k``:
``w(k, t) = w_1(k) t / t_1`` before the first, ``w_N(k) t / t_N`` after the last. **In k** the
slices are SVI everywhere (linear wings, within Lee's bound); nothing is clipped.

The forward at a ``t`` between expiries (:meth:`VolSurface.forward`) is log-linear in ``t``
(constant carry between expiries), flat outside. Prices are Black-76
(:func:`fengkong.market.options.black76_vec`) in quote terms.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fengkong.market.options import black76_vec
from fengkong.market.svi import SviParams, butterfly_g, fit_svi, fit_svi_constrained
from fengkong.model.enums import OptionKind

__all__ = [
    "DEFAULT_K_GRID",
    "ArbitrageError",
    "ButterflyArbitrageError",
    "CalendarArbitrageError",
    "SliceFit",
    "SurfaceInputError",
    "VolSurface",
]

DEFAULT_K_GRID = np.linspace(-1.5, 1.5, 601)
"""Log-moneyness grid on which every slice is checked (and constrained when repaired)."""
_MIN_STRIKES = 5  # raw SVI has five parameters
_REPAIR_STRIDE = 10  # a repair starts by constraining every 10th grid point ...
_REPAIR_ROUNDS = 6  # ... and adds the points that still fail, up to this many times


class SurfaceInputError(ValueError):
    """Input that cannot make a surface; names the field, the value and why."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field, self.value, self.reason = field, value, reason
        super().__init__(f"{field}={value!r}: {reason}")


class ArbitrageError(ValueError):
    """Static arbitrage on a slice: ``expiry`` (years) and the log-moneyness ``k`` where."""

    expiry: float
    k: float


class ButterflyArbitrageError(ArbitrageError):
    """``g(k) < 0`` (negative density), or a wing steeper than Lee's bound (``k = ±inf``)."""

    def __init__(self, expiry: float, k: float, g: float) -> None:
        self.expiry, self.k, self.g = expiry, k, g
        super().__init__(f"butterfly arbitrage at expiry t={expiry!r} y, k={k!r}: g(k)={g!r} < 0")


class CalendarArbitrageError(ArbitrageError):
    """Total variance of ``expiry`` below that of the earlier ``previous`` at ``k``."""

    def __init__(self, expiry: float, previous: float, k: float, w: float, w_prev: float) -> None:
        self.expiry, self.previous, self.k, self.w, self.w_prev = expiry, previous, k, w, w_prev
        super().__init__(
            f"calendar arbitrage at expiry t={expiry!r} y, k={k!r}: total variance {w!r} < "
            f"{w_prev!r} of the earlier expiry t={previous!r} y"
        )


class SliceFit(NamedTuple):
    """One calibrated expiry: parameters, forward, fit error and whether it was repaired."""

    t: float
    forward: float
    params: SviParams
    rmse_iv: float
    """Root-mean-square of fitted minus input implied volatility (fraction) at the strikes."""
    max_abs_iv: float
    repaired: bool


def _butterfly_violation(
    t: float, params: SviParams, grid: np.ndarray
) -> ButterflyArbitrageError | None:
    if params.wing_slope > 2.0:
        side = math.inf if params.rho >= 0.0 else -math.inf
        return ButterflyArbitrageError(t, side, 0.25 - params.wing_slope**2 / 16.0)
    g = butterfly_g(grid, *params.derivatives(grid))
    worst = int(np.argmin(g))
    if g[worst] < 0.0:
        return ButterflyArbitrageError(t, float(grid[worst]), float(g[worst]))
    return None


def _calendar_violation(
    t: float, params: SviParams, previous: tuple[float, SviParams] | None, grid: np.ndarray
) -> CalendarArbitrageError | None:
    if previous is None:
        return None
    t_prev, p_prev = previous
    w, w_prev = params.total_variance(grid), p_prev.total_variance(grid)
    worst = int(np.argmin(w - w_prev))
    if w[worst] < w_prev[worst]:
        return CalendarArbitrageError(
            t, t_prev, float(grid[worst]), float(w[worst]), float(w_prev[worst])
        )
    return None


def _repair(
    t: float,
    k: np.ndarray,
    w: np.ndarray,
    weights: np.ndarray,
    params: SviParams,
    previous: tuple[float, SviParams] | None,
    grid: np.ndarray,
) -> tuple[SviParams, ArbitrageError | None]:
    """Constrained re-fit by cutting planes: constrain ``g ≥ 0`` and ``w ≥ w_prev`` on every
    :data:`_REPAIR_STRIDE`-th grid point, check the whole grid, add the points that still fail
    (and their neighbours), re-fit; at most :data:`_REPAIR_ROUNDS` rounds. Returns the
    parameters and the remaining violation (None when there is none)."""
    floor = None if previous is None else previous[1].total_variance(grid)
    active = np.zeros(grid.shape[0], dtype=bool)
    active[::_REPAIR_STRIDE] = True
    error: ArbitrageError | None = None
    for _ in range(_REPAIR_ROUNDS):
        params = fit_svi_constrained(
            k, w, weights, params, grid[active], None if floor is None else floor[active]
        )
        error = _butterfly_violation(t, params, grid) or _calendar_violation(
            t, params, previous, grid
        )
        if error is None:
            break
        failing = butterfly_g(grid, *params.derivatives(grid)) < 0.0
        if floor is not None:
            failing |= params.total_variance(grid) < floor
        active |= failing | np.roll(failing, 1) | np.roll(failing, -1)
    return params, error


def _as_1d(name: str, values: object, n: int | None = None) -> np.ndarray:
    array = np.atleast_1d(np.asarray(values, dtype=float))
    if array.ndim != 1 or (n is not None and array.shape[0] != n):
        raise SurfaceInputError(name, array.shape, f"expected a 1-D array of length {n}")
    bad = ~(np.isfinite(array) & (array > 0.0))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise SurfaceInputError(f"{name}[{index}]", float(array[index]), "must be finite and > 0")
    return array


class VolSurface:
    """SVI slices at increasing expiries, free of static arbitrage (module docstring)."""

    __slots__ = ("_a", "_b", "_m", "_rho", "_sigma", "forwards", "k_grid", "slices", "times")

    def __init__(self, slices: list[SliceFit], k_grid: np.ndarray = DEFAULT_K_GRID) -> None:
        """A surface from already calibrated slices; checks validity and every arbitrage
        condition on ``k_grid`` and raises the typed error of the first failure."""
        if not slices:
            raise SurfaceInputError("slices", 0, "at least one expiry is needed")
        ordered = sorted(slices, key=lambda s: s.t)
        previous: tuple[float, SviParams] | None = None
        for s in ordered:
            if previous is not None and s.t == previous[0]:
                raise SurfaceInputError("t", s.t, "expiry listed twice")
            s.params.check()
            error = _butterfly_violation(s.t, s.params, k_grid) or _calendar_violation(
                s.t, s.params, previous, k_grid
            )
            if error is not None:
                raise error
            previous = (s.t, s.params)
        self.slices = tuple(ordered)
        self.k_grid = k_grid
        self.times = np.array([s.t for s in ordered])
        self.forwards = np.array([s.forward for s in ordered])
        self._a, self._b, self._rho, self._m, self._sigma = (
            np.array(column) for column in zip(*(s.params for s in ordered), strict=True)
        )

    @classmethod
    def from_params(
        cls,
        times: list[float],
        forwards: list[float],
        params: list[SviParams],
        k_grid: np.ndarray = DEFAULT_K_GRID,
    ) -> VolSurface:
        """A surface from given SVI parameters (checked like a fitted one)."""
        return cls(
            [
                SliceFit(float(t), float(f), p, 0.0, 0.0, False)
                for t, f, p in zip(times, forwards, params, strict=True)
            ],
            k_grid,
        )

    @classmethod
    def fit(
        cls,
        expiries_t: np.ndarray,
        forwards: np.ndarray,
        strikes: np.ndarray,
        ivs: np.ndarray,
        weights: np.ndarray | None = None,
        *,
        k_grid: np.ndarray = DEFAULT_K_GRID,
        repair: bool = True,
    ) -> VolSurface:
        """Calibrate one SVI slice per distinct ``expiries_t`` (years) to the options' implied
        volatilities ``ivs`` (fractions), each option at its own ``forwards`` entry; every
        argument is per option. ``weights`` (default 1) weight the squared total-variance
        errors. Arbitrage is repaired or raised as the module docstring says."""
        t = _as_1d("expiries_t", expiries_t)
        n = t.shape[0]
        f = _as_1d("forwards", forwards, n)
        strike = _as_1d("strikes", strikes, n)
        iv = _as_1d("ivs", ivs, n)
        if weights is None:
            weight = np.ones(n)
        else:
            weight = np.atleast_1d(np.asarray(weights, dtype=float))
            if weight.shape != (n,) or not (np.isfinite(weight) & (weight >= 0.0)).all():
                raise SurfaceInputError("weights", weight.shape, f"{n} finite values >= 0 needed")
        k_all = np.log(strike / f)
        slices: list[SliceFit] = []
        previous: tuple[float, SviParams] | None = None
        for expiry in np.unique(t):
            rows = t == expiry
            k, w, wt = k_all[rows], iv[rows] ** 2 * expiry, weight[rows]
            if np.unique(k).shape[0] < _MIN_STRIKES or not (wt > 0.0).any():
                raise SurfaceInputError(
                    "strikes", float(expiry), f"expiry needs >= {_MIN_STRIKES} weighted strikes"
                )
            params = fit_svi(k, w, wt)
            repaired = False
            error = _butterfly_violation(expiry, params, k_grid) or _calendar_violation(
                expiry, params, previous, k_grid
            )
            if error is not None and repair:
                params, error = _repair(expiry, k, w, wt, params, previous, k_grid)
                repaired = True
            if error is not None:
                raise error
            fitted = np.sqrt(params.total_variance(k) / expiry)
            diff = fitted - iv[rows]
            slices.append(
                SliceFit(
                    float(expiry),
                    float(np.median(f[rows])),
                    params,
                    float(np.sqrt(np.mean(diff * diff))),
                    float(np.max(np.abs(diff))),
                    repaired,
                )
            )
            previous = (float(expiry), params)
        return cls(slices, k_grid)

    # --- evaluation ---------------------------------------------------------------------

    def _bracket(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For each ``t``: lower and upper slice index, the blend weight ``α`` of the upper
        one and the flat-vol scale applied outside ``[t_1, t_N]``."""
        bad = ~(np.isfinite(t) & (t > 0.0))
        if bad.any():
            index = int(np.flatnonzero(bad.ravel())[0])
            raise SurfaceInputError(f"t[{index}]", float(t.ravel()[index]), "must be > 0")
        last = self.times.shape[0] - 1
        upper = np.clip(np.searchsorted(self.times, t, side="left"), 0, last)
        lower = np.clip(upper - 1, 0, last)
        t_lo, t_hi = self.times[lower], self.times[upper]
        span = t_hi - t_lo
        alpha = np.where(span > 0.0, (t - t_lo) / np.where(span > 0.0, span, 1.0), 1.0)
        alpha = np.clip(alpha, 0.0, 1.0)
        scale = np.where(t < self.times[0], t / self.times[0], 1.0)
        scale = np.where(t > self.times[last], t / self.times[last], scale)
        return lower, upper, alpha, scale

    def _slice_terms(self, index: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, ...]:
        b, rho, sigma = self._b[index], self._rho[index], self._sigma[index]
        u = k - self._m[index]
        r = np.sqrt(u * u + sigma * sigma)
        return self._a[index] + b * (rho * u + r), b * (rho + u / r), b * sigma * sigma / r**3

    def total_variance(self, k: np.ndarray | float, t: np.ndarray | float) -> np.ndarray:
        """``w(k, t)`` (module docstring), broadcast over ``k`` and ``t``."""
        k, t = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        lower, upper, alpha, scale = self._bracket(t)
        w_lo = self._slice_terms(lower, k)[0]
        w_hi = self._slice_terms(upper, k)[0]
        return scale * ((1.0 - alpha) * w_lo + alpha * w_hi)

    def butterfly_g(self, k: np.ndarray | float, t: np.ndarray | float) -> np.ndarray:
        """Gatheral's ``g`` of the (interpolated) smile at ``t``, at log-moneyness ``k``."""
        k, t = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(t, dtype=float))
        lower, upper, alpha, scale = self._bracket(t)
        lo, hi = self._slice_terms(lower, k), self._slice_terms(upper, k)
        w, w1, w2 = (scale * ((1.0 - alpha) * x + alpha * y) for x, y in zip(lo, hi, strict=True))
        return butterfly_g(k, w, w1, w2)

    def forward(self, t: np.ndarray | float) -> np.ndarray:
        """Forward at ``t``: log-linear between expiries, flat outside."""
        return np.exp(np.interp(t, self.times, np.log(self.forwards)))

    def iv(
        self,
        strike: np.ndarray | float,
        t: np.ndarray | float,
        forward: np.ndarray | float | None = None,
    ) -> np.ndarray:
        """Mark implied volatility (fraction) of ``strike`` at ``t`` years; the forward is
        :meth:`forward` unless given. Vectorized (broadcast) over all arguments."""
        t = np.asarray(t, dtype=float)
        f = self.forward(t) if forward is None else np.asarray(forward, dtype=float)
        strike = np.asarray(strike, dtype=float)
        if not (np.isfinite(strike) & (strike > 0.0)).all():
            raise SurfaceInputError("strike", strike, "must be finite and > 0")
        if not (np.isfinite(f) & (f > 0.0)).all():
            raise SurfaceInputError("forward", f, "must be finite and > 0")
        w = self.total_variance(np.log(strike / f), t)
        return np.sqrt(w / t)

    def mark_price(
        self,
        forward: np.ndarray | float,
        strike: np.ndarray | float,
        t: np.ndarray | float,
        kind: np.ndarray | OptionKind | str,
        rate: np.ndarray | float = 0.0,
    ) -> np.ndarray:
        """Black-76 mark price (quote terms) at the surface's IV; ``kind`` is ``call``/``put``,
        an :class:`OptionKind` or a boolean array (True = call)."""
        kinds = np.asarray(kind)
        if kinds.dtype == bool:
            is_call = kinds
        else:
            is_call = kinds == OptionKind.CALL.value
            unknown = ~(is_call | (kinds == OptionKind.PUT.value))
            if unknown.any():
                raise SurfaceInputError(
                    "kind", kinds.ravel()[np.flatnonzero(unknown)[0]], "must be 'call' or 'put'"
                )
        vol = self.iv(strike, t, forward)
        return black76_vec(forward, strike, t, vol, rate, is_call).price
