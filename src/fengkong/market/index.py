"""Index price of an underlying from several spot sources: weights, staleness, outliers.

``PriceIndex = Σ w_i P_i / Σ w_i`` over the *healthy* constituents (margin-mechanics.md §1.7,
Binance "Mark price and price index" FAQ). All prices are integers at one declared decimal scale
and weights integers at :data:`WEIGHT_SCALE`; the result is rounded to the nearest unit, ties to
even (:func:`nearest`). Steps, in order:

1. **Staleness.** A source whose last update is older than ``stale_after_ms`` at the time of the
   computation gets weight 0 (Binance: 10 s in the 2020 text, 5 min in the newer one).
2. **Outliers**, against the median ``m`` of the fresh sources' prices, one of the two published
   rules chosen per index (:class:`OutlierRule`):

   * ``EXCLUDE`` (older Binance USDⓈ-M text): a source more than ``limit`` from ``m`` gets weight
     0 and the rest are renormalised; when more than one source deviates, the index is ``m``.
   * ``CAP`` (newer Binance Price Index FAQ): a source beyond ``limit`` is capped at
     ``m × (1 ± limit)`` (rounded towards ``m``) and keeps its weight.

3. **Quorum.** With fewer than ``min_sources`` healthy sources the index is *stale*: it still
   carries the last computable value for display, and every consumer must fail closed on it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "WEIGHT_SCALE",
    "IndexResult",
    "IndexStatus",
    "OutlierRule",
    "SourceQuote",
    "compute_index",
    "median2",
    "nearest",
]

WEIGHT_SCALE = 8
"""Decimals of constituent weights and of the outlier limit (``0.05`` = ``5_000_000``)."""
_ONE = 10**WEIGHT_SCALE


class OutlierRule(enum.StrEnum):
    EXCLUDE = "exclude"
    CAP = "cap"


class IndexStatus(enum.StrEnum):
    """Why an index is or is not usable; ``OK`` is the only status a consumer may act on."""

    OK = "ok"
    STALE_TOO_FEW_SOURCES = "stale_too_few_sources"
    STALE_NO_SOURCES = "stale_no_sources"


class SourceQuote(NamedTuple):
    """A constituent's latest price (units at the index scale), weight and update time (ms)."""

    source: str
    price: int
    weight: int
    time: int


class IndexResult(NamedTuple):
    price: int | None
    status: IndexStatus
    healthy: tuple[str, ...]
    """Sources that contributed with non-zero weight (capped ones included), sorted."""


def nearest(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` to the nearest integer, ties to even (``denominator > 0``)."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def median2(values: Sequence[int]) -> int:
    """Twice the median of ``values`` (exact for an even count: the sum of the middle pair)."""
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    if n % 2:
        return 2 * ordered[middle]
    return ordered[middle - 1] + ordered[middle]


def compute_index(
    quotes: Sequence[SourceQuote],
    *,
    now: int,
    stale_after_ms: int,
    rule: OutlierRule,
    limit: int,
    min_sources: int,
) -> IndexResult:
    """The index over ``quotes`` at time ``now`` (module docstring); ``limit`` at WEIGHT_SCALE."""
    fresh = [q for q in quotes if q.weight > 0 and now - q.time <= stale_after_ms]
    if not fresh:
        return IndexResult(None, IndexStatus.STALE_NO_SOURCES, ())
    m2 = median2([q.price for q in fresh])
    # |p - m| > limit·m  <=>  |2p - 2m|·ONE > limit·2m, exactly in integers
    bound = limit * m2
    total = acc = 0
    if rule == OutlierRule.EXCLUDE:
        kept = [q for q in fresh if abs(2 * q.price - m2) * _ONE <= bound]
        if len(fresh) - len(kept) > 1:  # the median of all fresh sources is the index
            status = (
                IndexStatus.OK if len(fresh) >= min_sources else IndexStatus.STALE_TOO_FEW_SOURCES
            )
            return IndexResult(nearest(m2, 2), status, tuple(sorted(q.source for q in fresh)))
        for q in kept:
            total += q.weight
            acc += q.price * q.weight
    else:
        kept = fresh
        high = (m2 * (_ONE + limit)) // (2 * _ONE)  # m(1 + limit), rounded down towards m
        low = -((-m2 * (_ONE - limit)) // (2 * _ONE))  # m(1 - limit), rounded up towards m
        for q in kept:
            p = q.price
            if p > high:
                p = high
            elif p < low:
                p = low
            total += q.weight
            acc += p * q.weight
    price = nearest(acc, total)
    healthy = tuple(sorted(q.source for q in kept))
    if len(kept) < min_sources:
        return IndexResult(price, IndexStatus.STALE_TOO_FEW_SOURCES, healthy)
    return IndexResult(price, IndexStatus.OK, healthy)
