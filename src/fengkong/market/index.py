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

:func:`compute_index` is the reference: stateless, it filters and sorts all quotes on every
call. :class:`LiveIndex` gives the same result per source update in amortised constant work
(a sorted list of the fresh prices kept by insertion, running weighted sums, an expiry bound);
the engine component uses it, and a test replays long random streams through both.
"""

from __future__ import annotations

import enum
from bisect import insort
from collections.abc import Mapping, Sequence
from typing import NamedTuple

__all__ = [
    "WEIGHT_SCALE",
    "IndexResult",
    "IndexStatus",
    "LiveIndex",
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


_OK = IndexStatus.OK
_TOO_FEW = IndexStatus.STALE_TOO_FEW_SOURCES
_NO_SOURCES = IndexStatus.STALE_NO_SOURCES
_CAP = OutlierRule.CAP
_NEVER = float("inf")  # the quote time of a slot that is not fresh, for min()


class LiveIndex:
    """:func:`compute_index` kept up to date one source update at a time.

    The constituents are fixed (slots in source-name order, so that the healthy sources come out
    sorted). A slot is *fresh* while ``time >= now - stale_after_ms``; the fresh slots' prices
    are kept in a sorted list (one removal and one insertion per update) with their weight sum
    and weighted price sum, so the median, the extremes and the plain weighted mean are read
    off directly. Only when an extreme lies beyond the outlier limit are the fresh slots walked
    (the capped or excluded ones change the sums). Expiry: ``oldest`` is a lower bound of the
    fresh slots' quote times; only when the cutoff passes it is the true minimum taken (one
    ``min`` over the slots) and the expired slots dropped. Event time may go backwards between
    events (nothing forbids it); then the fresh set is rebuilt from all quotes.

    After :meth:`update` or :meth:`evaluate`, ``price``, ``status`` and ``healthy`` equal the
    fields of ``compute_index(quotes, now=now, ...)`` over the latest quote of every source.
    """

    __slots__ = (
        "_acc", "_count", "_cutoff", "_fresh", "_ftimes", "_names", "_oldest", "_sorted",
        "_total", "healthy", "high_mul", "limit", "low_mul", "min_sources", "price", "prices",
        "rule", "slot", "sources", "stale_after_ms", "status", "times", "weights",
    )  # fmt: skip

    def __init__(
        self,
        weights: Mapping[str, int],
        *,
        stale_after_ms: int,
        rule: OutlierRule,
        limit: int,
        min_sources: int,
    ) -> None:
        if any(w <= 0 for w in weights.values()):
            raise ValueError("weights: every constituent weight must be positive")
        self.sources: tuple[str, ...] = tuple(sorted(weights))
        self.slot = {source: k for k, source in enumerate(self.sources)}
        self.weights = [weights[s] for s in self.sources]
        n = len(self.sources)
        self.prices = [0] * n
        self.times: list[int | None] = [None] * n  # None: never quoted
        self.stale_after_ms = stale_after_ms
        self.rule = OutlierRule(rule)  # a plain "cap" / "exclude" string is accepted too
        self.limit = limit
        self.min_sources = min_sources
        self.high_mul = _ONE + limit
        self.low_mul = _ONE - limit
        self._fresh = [False] * n
        self._ftimes: list[float] = [_NEVER] * n
        self._sorted: list[int] = []  # fresh prices, ascending
        self._count = self._total = self._acc = 0  # fresh: count, Σ w, Σ w·p
        self._oldest: float = _NEVER  # <= every fresh slot's time
        self._cutoff: float = -_NEVER  # the last evaluation's now - stale_after_ms
        self._names: tuple[str, ...] | None = ()  # fresh sources in slot order; None: unknown
        self.price: int | None = None
        self.status = _NO_SOURCES
        self.healthy: tuple[str, ...] = ()

    def quotes(self) -> list[SourceQuote]:
        """The latest quote of every source that has quoted, in source-name order."""
        return [
            SourceQuote(s, self.prices[k], self.weights[k], t)
            for k, (s, t) in enumerate(zip(self.sources, self.times, strict=True))
            if t is not None
        ]

    def load(self, source: str, price: int, time: int) -> None:
        """Set a quote without evaluating (restore, re-configuration); call :meth:`evaluate`."""
        k = self.slot[source]
        self.prices[k] = price
        self.times[k] = time
        self._cutoff = _NEVER  # force a rebuild at the next evaluation

    def evaluate(self, now: int) -> None:
        """Rebuild the fresh set from every quote at ``now`` and compute the index."""
        self._rebuild(now - self.stale_after_ms)
        self._compute()

    def update(self, k: int, price: int, time: int, now: int) -> None:
        """Slot ``k`` quotes ``price`` at ``time``; compute the index at event time ``now``."""
        cutoff = now - self.stale_after_ms
        previous = self.times[k]
        if cutoff < self._cutoff or (previous is not None and time < previous):
            # event time went backwards (expired quotes may be fresh again), or the source's own
            # time did (the component refuses that): rebuild the fresh set from every quote
            self.prices[k] = price
            self.times[k] = time
            self._rebuild(cutoff)
            self._compute()
            return
        self._cutoff = cutoff
        if cutoff > self._oldest:
            self._expire(cutoff)
        if self._fresh[k]:  # fresh now, and time >= its previous time: it stays fresh
            old = self.prices[k]
            if price != old:
                ordered = self._sorted
                ordered.remove(old)
                insort(ordered, price)
                self._acc += self.weights[k] * (price - old)
            self._ftimes[k] = time  # later than before: ``oldest`` stays a lower bound
        elif time >= cutoff:
            w = self.weights[k]
            insort(self._sorted, price)
            self._acc += w * price
            self._total += w
            self._count += 1
            self._fresh[k] = True
            self._ftimes[k] = time
            if time < self._oldest:
                self._oldest = time
            self._names = None
        self.prices[k] = price
        self.times[k] = time
        self._compute()

    def _expire(self, cutoff: int) -> None:
        ftimes = self._ftimes
        oldest = min(ftimes)
        if cutoff > oldest:
            fresh = self._fresh
            for k, t in enumerate(ftimes):
                if t < cutoff:
                    price = self.prices[k]
                    w = self.weights[k]
                    self._sorted.remove(price)
                    self._acc -= w * price
                    self._total -= w
                    self._count -= 1
                    fresh[k] = False
                    ftimes[k] = _NEVER
            self._names = None
            oldest = min(ftimes)
        self._oldest = oldest

    def _rebuild(self, cutoff: int) -> None:
        n = len(self.sources)
        self._fresh = fresh = [False] * n
        self._ftimes = ftimes = [_NEVER] * n
        ordered = []
        count = total = acc = 0
        for k, t in enumerate(self.times):
            if t is not None and t >= cutoff:
                price, w = self.prices[k], self.weights[k]
                fresh[k] = True
                ftimes[k] = t
                ordered.append(price)
                count += 1
                total += w
                acc += w * price
        ordered.sort()
        self._sorted = ordered
        self._count, self._total, self._acc = count, total, acc
        self._oldest = min(ftimes, default=_NEVER)
        self._cutoff = cutoff
        self._names = None

    def _fresh_names(self) -> tuple[str, ...]:
        names = self._names
        if names is None:
            fresh = self._fresh
            names = self._names = tuple(s for k, s in enumerate(self.sources) if fresh[k])
        return names

    def _compute(self) -> None:
        n = self._count
        if not n:
            self.price, self.status, self.healthy = None, _NO_SOURCES, ()
            return
        ordered = self._sorted
        middle = n >> 1
        m2 = ordered[middle - 1] + ordered[middle] if not n & 1 else 2 * ordered[middle]
        lowest = ordered[0]
        highest = ordered[-1]
        if self.rule is _CAP:
            high = (m2 * self.high_mul) // (2 * _ONE)  # m(1 + limit), rounded down towards m
            low = -((-m2 * self.low_mul) // (2 * _ONE))  # m(1 - limit), rounded up towards m
            acc = self._acc
            if lowest < low or highest > high:  # some are capped (the same test as the reference)
                acc = 0
                fresh, weights = self._fresh, self.weights
                for k, p in enumerate(self.prices):
                    if fresh[k]:
                        if p > high:
                            p = high
                        elif p < low:
                            p = low
                        acc += p * weights[k]
            total = self._total
            kept = n
            healthy = self._names if self._names is not None else self._fresh_names()
        else:
            bound = self.limit * m2
            if abs(2 * lowest - m2) * _ONE <= bound and abs(2 * highest - m2) * _ONE <= bound:
                acc, total, kept = self._acc, self._total, n
                healthy = self._names if self._names is not None else self._fresh_names()
            else:
                acc = total = kept = 0
                names = []
                fresh, weights, sources = self._fresh, self.weights, self.sources
                for k, p in enumerate(self.prices):
                    if fresh[k] and abs(2 * p - m2) * _ONE <= bound:
                        w = weights[k]
                        total += w
                        acc += p * w
                        kept += 1
                        names.append(sources[k])
                if n - kept > 1:  # the median of all fresh sources is the index
                    self.price = nearest(m2, 2)
                    self.status = _OK if n >= self.min_sources else _TOO_FEW
                    self.healthy = self._fresh_names()
                    return
                healthy = tuple(names)
        quotient, remainder = divmod(acc, total)  # nearest(acc, total), inlined
        twice = 2 * remainder
        if twice > total or (twice == total and quotient & 1):
            quotient += 1
        self.price = quotient
        self.status = _OK if kept >= self.min_sources else _TOO_FEW
        self.healthy = healthy
