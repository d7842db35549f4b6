"""VaR backtests: Kupiec, Christoffersen, and the Basel traffic light.

An *exception* is a day whose loss exceeds the VaR forecast for it: ``P&L_t < −VaR_t``
(strict). With ``T`` days, ``x`` exceptions and tail probability ``p = 1 − c``:

* Kupiec (1995), "Techniques for verifying the accuracy of risk measurement models",
  J. Derivatives 3, proportion of failures (unconditional coverage), ``χ²(1)``::

      LR_uc = −2 ln[(1 − p)^(T−x) p^x] + 2 ln[(1 − x/T)^(T−x) (x/T)^x]

* Christoffersen (1998), "Evaluating interval forecasts", Int. Economic Review 39, §3.
  With ``n_ij`` the number of days in state ``j`` after a day in state ``i`` (1 = exception),
  ``π₀₁ = n₀₁/(n₀₀+n₀₁)``, ``π₁₁ = n₁₁/(n₁₀+n₁₁)``, ``π = (n₀₁+n₁₁)/(T−1)``; independence,
  ``χ²(1)``::

      LR_ind = −2 ln[(1−π)^(n₀₀+n₁₀) π^(n₀₁+n₁₁)]
               + 2 ln[(1−π₀₁)^n₀₀ π₀₁^n₀₁ (1−π₁₁)^n₁₀ π₁₁^n₁₁]

  and conditional coverage ``LR_cc = LR_uc + LR_ind``, ``χ²(2)``.
  ``0 · ln 0 = 0`` throughout (a likelihood term with no observations is 1).

* Basel Committee on Banking Supervision (1996), "Supervisory framework for the use of
  'backtesting' in conjunction with the internal models approach to market risk capital
  requirements", Table 2. With ``X ~ Binomial(T, p)``: green while ``P(X ≤ x) < 95%``,
  yellow while ``P(X ≤ x) < 99.99%``, red beyond. For the standard 250 days at 99% that is
  green 0–4, yellow 5–9 (plus factor 0.40, 0.50, 0.65, 0.75, 0.85), red 10+ (plus 1.00).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import xlogy

__all__ = [
    "BASEL_PLUS_FACTORS",
    "TestResult",
    "TrafficLight",
    "Zone",
    "christoffersen_conditional_coverage",
    "christoffersen_independence",
    "exceptions",
    "kupiec_pof",
    "traffic_light",
    "transition_counts",
]

BASEL_PLUS_FACTORS = {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}
"""Plus factor of the yellow zone (250 days, 99% VaR); red is 1.00, green 0."""


class Zone(enum.StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True)
class TestResult:
    statistic: float
    pvalue: float
    df: int


@dataclass(frozen=True)
class TrafficLight:
    zone: Zone
    exceptions: int
    observations: int
    cumulative_probability: float  # P(X ≤ exceptions) under the model
    plus_factor: float | None  # Basel multiplier add-on; only for 250 days at 99%


def exceptions(pnl: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Boolean exception series: the loss exceeds the VaR (``pnl < −var``)."""
    p, v = np.asarray(pnl, dtype=float), np.asarray(var, dtype=float)
    if p.shape != v.shape or not (np.isfinite(p).all() and np.isfinite(v).all()):
        raise ValueError(f"pnl {p.shape} and var {v.shape}: need finite series of equal length")
    return p < -v


def _hits(series: np.ndarray) -> np.ndarray:
    hits = np.asarray(series)
    if hits.ndim != 1 or hits.size == 0:
        raise ValueError(f"exceptions.shape={hits.shape}: need a non-empty 1-D series")
    if not np.isin(hits, (0, 1)).all():
        raise ValueError("exceptions: must be booleans or 0/1")
    return hits.astype(bool)


def _tail(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p!r}: the tail probability must be strictly between 0 and 1")
    return p


def kupiec_pof(hits: np.ndarray, p: float) -> TestResult:
    """Kupiec's proportion-of-failures LR test that the exception rate is ``p`` (= 1 − c)."""
    series, p = _hits(hits), _tail(p)
    t, x = series.size, int(series.sum())
    rate = x / t
    log_null = xlogy(t - x, 1.0 - p) + xlogy(x, p)
    log_alt = xlogy(t - x, 1.0 - rate) + xlogy(x, rate)
    statistic = max(float(-2.0 * (log_null - log_alt)), 0.0)
    return TestResult(statistic, float(stats.chi2.sf(statistic, 1)), 1)


def transition_counts(hits: np.ndarray) -> tuple[int, int, int, int]:
    """``(n00, n01, n10, n11)``: day pairs by state yesterday → today (1 = exception)."""
    series = _hits(hits)
    before, after = series[:-1], series[1:]
    return (
        int(np.sum(~before & ~after)),
        int(np.sum(~before & after)),
        int(np.sum(before & ~after)),
        int(np.sum(before & after)),
    )


def christoffersen_independence(hits: np.ndarray) -> TestResult:
    """Christoffersen's LR test that an exception today does not depend on yesterday's."""
    series = _hits(hits)
    if series.size < 2:
        raise ValueError("exceptions: the independence test needs at least 2 days")
    n00, n01, n10, n11 = transition_counts(series)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    log_null = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    log_alt = xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    statistic = max(float(-2.0 * (log_null - log_alt)), 0.0)
    return TestResult(statistic, float(stats.chi2.sf(statistic, 1)), 1)


def christoffersen_conditional_coverage(hits: np.ndarray, p: float) -> TestResult:
    """Christoffersen's joint test of coverage and independence: ``LR_uc + LR_ind``, χ²(2)."""
    statistic = kupiec_pof(hits, p).statistic + christoffersen_independence(hits).statistic
    return TestResult(statistic, float(stats.chi2.sf(statistic, 2)), 2)


def traffic_light(exception_count: int, observations: int = 250, p: float = 0.01) -> TrafficLight:
    """Basel traffic-light zone of ``exception_count`` exceptions in ``observations`` days."""
    p = _tail(p)
    if observations < 1 or not 0 <= exception_count <= observations:
        raise ValueError(
            f"exception_count={exception_count!r}, observations={observations!r}: "
            "need 0 <= exceptions <= observations, observations >= 1"
        )
    cumulative = float(stats.binom.cdf(exception_count, observations, p))
    if cumulative < 0.95:
        zone = Zone.GREEN
    elif cumulative < 0.9999:
        zone = Zone.YELLOW
    else:
        zone = Zone.RED
    plus = None
    if observations == 250 and abs(p - 0.01) < 1e-12:
        plus = {Zone.GREEN: 0.0, Zone.RED: 1.0}.get(zone, BASEL_PLUS_FACTORS.get(exception_count))
    return TrafficLight(zone, exception_count, observations, cumulative, plus)
