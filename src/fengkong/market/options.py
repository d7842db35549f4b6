"""Black-76 option prices, Greeks and implied volatility, scalar and vectorized.

Model (Black 1976, "The pricing of commodity contracts", J. Financial Economics 3):
a European option on a forward ``F`` struck at ``K``, expiring in ``t`` years, with
log-normal volatility ``vol`` and continuously compounded discount rate ``rate``::

    d1 = (ln(F/K) + vol² t / 2) / (vol √t),   d2 = d1 − vol √t,   DF = exp(−rate t)
    call = DF (F N(d1) − K N(d2))              put = DF (K N(−d2) − F N(−d1))

Greeks, in *quote terms* (price in quote currency per one unit of underlying):

=========  =================================================  ===========================
delta      ∂V/∂F = DF N(d1) (call), −DF N(−d1) (put)           per 1 quote unit of F
gamma      ∂²V/∂F² = DF n(d1) / (F vol √t)                     per 1 quote unit of F
vega       ∂V/∂vol = DF F n(d1) √t                             per 1.00 of vol (100 points)
theta      −∂V/∂t = rate V − DF F n(d1) vol / (2 √t)           per year of calendar time
rho        ∂V/∂rate = −t V   (the forward held fixed)          per 1.00 of rate
=========  =================================================  ===========================

*Coin terms* (inverse options, Deribit style: premium paid in the underlying coin) value the
same option as ``U = V / F`` coins. :func:`to_coin` converts: price, vega, theta and rho are
divided by ``F``; delta becomes the coin delta ``F ∂U/∂F = ∂V/∂F − V/F`` (the change of the
position's value in coin terms, measured in coins, per relative move of ``F``), and gamma its
derivative ``∂(coin delta)/∂F = ∂²V/∂F² − coin delta / F``.

Implied volatility inverts the price in Black's normalised form (Jäckel, "Let's be rational",
Wilmott 2015): with ``x = ln(F/K)`` and total volatility ``s = vol √t`` the out-of-the-money
price divided by ``DF √(F K)`` is ``b(x, s) = e^{x/2} N(x/s + s/2) − e^{−x/2} N(x/s − s/2)`` for
``x ≤ 0`` (an in-the-money price is turned out of the money by put-call parity first). ``b`` has
one inflection point ``s_c = √(2|x|)``; below it Newton runs on ``ln b`` (which is concave there,
so the iterates climb monotonically from the left), above it on ``b`` (concave too). A bracket
kept from every iterate catches any step that leaves it, with a bisection. A price outside the
no-arbitrage range ``(intrinsic, upper bound)`` has no volatility and raises
:class:`ImpliedVolError` naming the field and value.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr

from fengkong.model.enums import OptionKind

__all__ = [
    "Greeks",
    "ImpliedVolError",
    "black76",
    "black76_vec",
    "implied_vol",
    "implied_vol_vec",
    "to_coin",
]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_MAX_ITERATIONS = 100
_S_TOLERANCE = 4.0 * np.finfo(float).eps  # relative step at which the solve has converged
_MIN_NORMALISED_PRICE = 1e-290  # below this b(x, s) cannot be evaluated in doubles


class Greeks(NamedTuple):
    """Price and Greeks of one option (floats) or a chain (numpy arrays); see module doc."""

    price: float | np.ndarray
    delta: float | np.ndarray
    gamma: float | np.ndarray
    vega: float | np.ndarray
    theta: float | np.ndarray
    rho: float | np.ndarray


class ImpliedVolError(ValueError):
    """No volatility reproduces the price; names the field, the value and why."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")


def _kind(kind: OptionKind | str) -> bool:
    """True for a call; refuses anything but ``call`` / ``put``."""
    try:
        return OptionKind(kind) is OptionKind.CALL
    except ValueError:
        raise ValueError(f"kind={kind!r}: must be 'call' or 'put'") from None


def _check_positive(**values: float) -> None:
    for field, value in values.items():
        if not (value > 0.0 and math.isfinite(value)):
            raise ValueError(f"{field}={value!r}: must be a finite positive number")


def _ncdf(x: float) -> float:
    """Standard normal CDF, accurate in both tails (erfc, no 1 − N cancellation)."""
    return 0.5 * math.erfc(-x / _SQRT2)


def _npdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


# --- prices and Greeks ---------------------------------------------------------------------


def black76(
    forward: float,
    strike: float,
    t: float,
    vol: float,
    rate: float,
    kind: OptionKind | str,
) -> Greeks:
    """Black-76 price and Greeks in quote terms (see the module docstring for units)."""
    _check_positive(forward=forward, strike=strike, t=t, vol=vol)
    if not math.isfinite(rate):
        raise ValueError(f"rate={rate!r}: must be finite")
    is_call = _kind(kind)
    sqrt_t = math.sqrt(t)
    s = vol * sqrt_t
    d1 = (math.log(forward / strike) + 0.5 * s * s) / s
    d2 = d1 - s
    df = math.exp(-rate * t)
    pdf = _npdf(d1)
    if is_call:
        price = df * (forward * _ncdf(d1) - strike * _ncdf(d2))
        delta = df * _ncdf(d1)
    else:
        price = df * (strike * _ncdf(-d2) - forward * _ncdf(-d1))
        delta = -df * _ncdf(-d1)
    gamma = df * pdf / (forward * s)
    vega = df * forward * pdf * sqrt_t
    theta = rate * price - df * forward * pdf * vol / (2.0 * sqrt_t)
    rho = -t * price
    return Greeks(price, delta, gamma, vega, theta, rho)


def black76_vec(
    forward: np.ndarray | float,
    strike: np.ndarray | float,
    t: np.ndarray | float,
    vol: np.ndarray | float,
    rate: np.ndarray | float,
    is_call: np.ndarray | bool,
) -> Greeks:
    """:func:`black76` over numpy arrays (broadcast together); ``is_call`` is boolean.

    Inputs must be finite and ``forward, strike, t, vol`` positive; the first offending
    element is named in the ``ValueError``.
    """
    f, k, tt, v, r, c = np.broadcast_arrays(
        np.asarray(forward, dtype=float),
        np.asarray(strike, dtype=float),
        np.asarray(t, dtype=float),
        np.asarray(vol, dtype=float),
        np.asarray(rate, dtype=float),
        np.asarray(is_call, dtype=bool),
    )
    for field, values in (("forward", f), ("strike", k), ("t", tt), ("vol", v)):
        bad = ~(np.isfinite(values) & (values > 0.0))
        if bad.any():
            index = int(np.flatnonzero(bad.ravel())[0])
            raise ValueError(
                f"{field}[{index}]={values.ravel()[index]!r}: must be a finite positive number"
            )
    if not np.isfinite(r).all():
        index = int(np.flatnonzero(~np.isfinite(r.ravel()))[0])
        raise ValueError(f"rate[{index}]={r.ravel()[index]!r}: must be finite")
    sqrt_t = np.sqrt(tt)
    s = v * sqrt_t
    d1 = (np.log(f / k) + 0.5 * s * s) / s
    d2 = d1 - s
    df = np.exp(-r * tt)
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
    sign = np.where(c, 1.0, -1.0)
    n1 = ndtr(sign * d1)
    price = sign * df * (f * n1 - k * ndtr(sign * d2))
    delta = sign * df * n1
    gamma = df * pdf / (f * s)
    vega = df * f * pdf * sqrt_t
    theta = r * price - df * f * pdf * v / (2.0 * sqrt_t)
    rho = -tt * price
    return Greeks(price, delta, gamma, vega, theta, rho)


def to_coin(greeks: Greeks, forward: np.ndarray | float) -> Greeks:
    """Quote-terms Greeks of an option on ``forward`` re-expressed in coin (inverse) terms.

    ``U = V/F``: price, vega, theta, rho divided by ``F``; coin delta ``∂V/∂F − V/F``;
    coin gamma ``∂²V/∂F² − coin delta / F`` (module docstring).
    """
    coin_delta = greeks.delta - greeks.price / forward
    return Greeks(
        price=greeks.price / forward,
        delta=coin_delta,
        gamma=greeks.gamma - coin_delta / forward,
        vega=greeks.vega / forward,
        theta=greeks.theta / forward,
        rho=greeks.rho / forward,
    )


# --- implied volatility, scalar ------------------------------------------------------------


def _normalised_otm(x: float, s: float) -> tuple[float, float]:
    """``b(x, s)`` for ``x ≤ 0`` and its derivative ``∂b/∂s = e^{x/2} n(x/s + s/2)``."""
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    half = math.exp(0.5 * x)
    b = half * _ncdf(d1) - _ncdf(d2) / half
    return b, half * _npdf(d1)


def _solve_total_vol(x: float, beta: float) -> float:
    """Total volatility ``s`` with ``b(x, s) = beta``, for ``x ≤ 0``, ``0 < beta < e^{x/2}``."""
    s_c = math.sqrt(-2.0 * x)
    upper_branch = x == 0.0 or beta >= _normalised_otm(x, s_c)[0]
    # At the money b is concave from b'(0) = 1/√(2π), so beta·√(2π) lies left of the root.
    s = beta / _INV_SQRT_2PI if x == 0.0 else s_c
    lo, hi = 0.0, math.inf
    if upper_branch:
        lo = s
    else:
        hi = s
    for _ in range(_MAX_ITERATIONS):
        b, db = _normalised_otm(x, s)
        if b == beta:
            return s
        if b < beta:
            lo = max(lo, s)
        else:
            hi = min(hi, s)
        if upper_branch or b <= 0.0:
            step = (beta - b) / db if db > 0.0 else math.inf
        else:
            step = (math.log(beta) - math.log(b)) * b / db if db > 0.0 else math.inf
        candidate = s + step
        if not (lo < candidate < hi):
            candidate = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * max(s, lo, 1e-3)
        if abs(candidate - s) <= _S_TOLERANCE * s:
            return candidate
        s = candidate
    return s  # pragma: no cover - the bracketed Newton converges in far fewer iterations


def implied_vol(
    price: float,
    forward: float,
    strike: float,
    t: float,
    rate: float,
    kind: OptionKind | str,
) -> float:
    """The Black-76 volatility that reproduces ``price`` (quote terms), or ImpliedVolError.

    No volatility fits a price at or below the intrinsic value ``DF max(±(F − K), 0)`` or at
    or above the upper bound (``DF F`` for a call, ``DF K`` for a put).
    """
    _check_positive(forward=forward, strike=strike, t=t)
    if not math.isfinite(rate):
        raise ValueError(f"rate={rate!r}: must be finite")
    if not math.isfinite(price):
        raise ImpliedVolError("price", price, "must be finite")
    is_call = _kind(kind)
    df = math.exp(-rate * t)
    intrinsic = df * max(forward - strike, 0.0) if is_call else df * max(strike - forward, 0.0)
    bound = df * forward if is_call else df * strike
    if price >= bound:
        raise ImpliedVolError(
            "price", price, f"at or above the no-arbitrage upper bound {bound!r}: no volatility"
        )
    otm = price - intrinsic
    if otm <= 0.0:
        raise ImpliedVolError(
            "price", price, f"at or below the intrinsic value {intrinsic!r}: no volatility"
        )
    beta = otm / (df * math.sqrt(forward * strike))
    if beta < _MIN_NORMALISED_PRICE:
        raise ImpliedVolError("price", price, "time value too small to imply a volatility")
    x = -abs(math.log(forward / strike))
    return _solve_total_vol(x, beta) / math.sqrt(t)


# --- implied volatility, vectorized --------------------------------------------------------


def implied_vol_vec(
    price: np.ndarray | float,
    forward: np.ndarray | float,
    strike: np.ndarray | float,
    t: np.ndarray | float,
    rate: np.ndarray | float,
    is_call: np.ndarray | bool,
    *,
    on_error: str = "raise",
) -> np.ndarray:
    """:func:`implied_vol` over numpy arrays, same algorithm run on every element at once.

    ``on_error="raise"`` raises :class:`ImpliedVolError` naming the first element with no
    volatility (and how many there are); ``on_error="nan"`` returns NaN for those elements.
    """
    if on_error not in ("raise", "nan"):
        raise ValueError(f"on_error={on_error!r}: must be 'raise' or 'nan'")
    p, f, k, tt, r, c = (
        a.astype(float, copy=True).ravel()
        for a in np.broadcast_arrays(
            np.asarray(price, dtype=float),
            np.asarray(forward, dtype=float),
            np.asarray(strike, dtype=float),
            np.asarray(t, dtype=float),
            np.asarray(rate, dtype=float),
            np.asarray(is_call, dtype=bool),
        )
    )
    shape = np.broadcast_shapes(*(np.shape(a) for a in (price, forward, strike, t, rate, is_call)))
    c = c.astype(bool)
    for field, values in (("forward", f), ("strike", k), ("t", tt)):
        bad = ~(np.isfinite(values) & (values > 0.0))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{field}[{index}]={values[index]!r}: must be a finite positive number"
            )
    df = np.exp(-r * tt)
    intrinsic = df * np.maximum(np.where(c, f - k, k - f), 0.0)
    bound = df * np.where(c, f, k)
    otm = p - intrinsic
    beta = otm / (df * np.sqrt(f * k))
    valid = np.isfinite(p) & (p < bound) & (otm > 0.0) & (beta >= _MIN_NORMALISED_PRICE)
    if not valid.all() and on_error == "raise":
        bad = np.flatnonzero(~valid)
        index = int(bad[0])
        raise ImpliedVolError(
            f"price[{index}]",
            float(p[index]),
            f"outside the no-arbitrage range ({intrinsic[index]!r}, {bound[index]!r}) "
            f"or without time value; {bad.size} element(s) have no volatility",
        )
    x = -np.abs(np.log(f / k))
    s = np.full(p.shape, np.nan)
    if valid.any():
        s[valid] = _solve_total_vol_vec(x[valid], beta[valid])
    return (s / np.sqrt(tt)).reshape(shape)


def _normalised_otm_vec(x: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d1 = x / s + 0.5 * s
    half = np.exp(0.5 * x)
    b = half * ndtr(d1) - ndtr(d1 - s) / half
    return b, half * _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)


def _solve_total_vol_vec(x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Vectorized :func:`_solve_total_vol`: every element iterates until it converges."""
    s_c = np.sqrt(-2.0 * x)
    atm = x == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        b_c = np.where(atm, 0.0, _normalised_otm_vec(x, np.where(atm, 1.0, s_c))[0])
    upper = atm | (beta >= b_c)
    s = np.where(atm, beta / _INV_SQRT_2PI, s_c)
    lo = np.where(upper, s, 0.0)
    hi = np.where(upper, np.inf, s)
    log_beta = np.log(beta)
    result = np.empty_like(s)
    idx = np.arange(x.size)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(_MAX_ITERATIONS):
            xa, sa, ba = x[idx], s[idx], beta[idx]
            b, db = _normalised_otm_vec(xa, sa)
            below = b < ba
            lo[idx] = np.where(below, np.maximum(lo[idx], sa), lo[idx])
            hi[idx] = np.where(below, hi[idx], np.minimum(hi[idx], sa))
            linear = upper[idx] | (b <= 0.0)
            step = np.where(linear, (ba - b) / db, (log_beta[idx] - np.log(b)) * b / db)
            candidate = sa + step
            la, ha = lo[idx], hi[idx]
            outside = ~((la < candidate) & (candidate < ha)) | ~np.isfinite(candidate)
            fallback = np.where(
                np.isfinite(ha), 0.5 * (la + ha), 2.0 * np.maximum(np.maximum(sa, la), 1e-3)
            )
            candidate = np.where(outside, fallback, candidate)
            done = (b == ba) | (np.abs(candidate - sa) <= _S_TOLERANCE * sa)
            result[idx[done]] = np.where(b == ba, sa, candidate)[done]
            s[idx] = candidate
            idx = idx[~done]
            if idx.size == 0:
                break
        result[idx] = s[idx]
    return result
