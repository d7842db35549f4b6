"""Perpetual funding: impact prices, premium index, its time-weighted average and the rate.

Binance USDⓈ-M (margin-mechanics.md §1.8; Binance funding-history page and FAQ
"Introduction to Binance Futures Funding Rates")::

    Impact Margin Notional  IMN = 200 USDT / IMR at max leverage   (20x, IMR 5% -> 4,000 USDT)
    Impact bid / ask price   average fill price of selling / buying IMN into the book
    Premium index            P_i = [max(0, ImpactBid − Index) − max(0, Index − ImpactAsk)] / Index
    Average premium          P = (1·P_1 + 2·P_2 + … + n·P_n) / (1 + 2 + … + n)   (linear weights)
    Rate                     F = [P + clamp(I − P, −c, +c)] × N / 8,   N = interval in hours
    Capped rate              clamp(F, floor, cap)

Rates and premiums are integers at :data:`PREMIUM_SCALE` decimals while they are computed and
the settled rate is rounded once, to the nearest unit of ``RATE_SCALE`` (8 decimals, the
precision Binance publishes), ties to even. Prices are integers at the index scale.
"""

from __future__ import annotations

from collections.abc import Sequence

from fengkong.market.index import nearest

__all__ = [
    "FUNDING_BASE_HOURS",
    "PREMIUM_SCALE",
    "PremiumAverage",
    "funding_rate",
    "impact_margin_notional",
    "impact_price",
    "next_settlement",
    "premium_index",
]

PREMIUM_SCALE = 12
"""Decimals of premiums and of rates while they are computed (4 more than published)."""
FUNDING_BASE_HOURS = 8
"""The interest rate and clamp are quoted per 8 hours; other intervals scale by N/8."""
HOUR_MS = 3_600_000


def impact_margin_notional(base_margin: int, imr: int, imr_scale: int) -> int:
    """IMN = base_margin / IMR, in the units of ``base_margin`` (rounded down; IMR > 0)."""
    if imr <= 0:
        raise ValueError(f"imr={imr!r}: must be positive")
    return base_margin * 10**imr_scale // imr


def impact_price(levels: Sequence[tuple[int, int]], notional: int) -> int | None:
    """Average fill price of trading ``notional`` against ``levels`` (best first), or ``None``
    when the book is too thin.

    ``levels`` are ``(price, qty)`` integers at the price and quantity scales and ``notional``
    is in ``price × qty`` units (price scale + quantity scale decimals). The average is
    ``notional / quantity filled``, the last level filled partly, to the nearest price unit.
    """
    if notional <= 0:
        raise ValueError(f"notional={notional!r}: must be positive")
    remaining = notional
    filled = 0
    for price, qty in levels:
        value = price * qty
        if value >= remaining:
            # quantity filled = filled + remaining / price, exactly: scale everything by price
            return nearest(notional * price, filled * price + remaining)
        remaining -= value
        filled += qty
    return None


def premium_index(impact_bid: int, impact_ask: int, index: int) -> int:
    """P_i at PREMIUM_SCALE (module docstring); ``index > 0``, all prices at one scale."""
    excess = max(0, impact_bid - index) - max(0, index - impact_ask)
    return nearest(excess * 10**PREMIUM_SCALE, index)


def funding_rate(
    average_premium: int,
    *,
    interest: int,
    clamp: int,
    cap: int,
    floor: int,
    interval_hours: int,
    rate_scale: int,
) -> int:
    """The settled rate at ``rate_scale`` decimals; every other argument at PREMIUM_SCALE."""
    if not 0 < interval_hours <= FUNDING_BASE_HOURS or FUNDING_BASE_HOURS % interval_hours:
        raise ValueError(f"interval_hours={interval_hours!r}: must divide 8")
    if floor > cap:
        raise ValueError(f"floor={floor!r} > cap={cap!r}")
    rate = average_premium + min(max(interest - average_premium, -clamp), clamp)
    scaled_numerator = rate * interval_hours
    down = 10 ** (PREMIUM_SCALE - rate_scale) * FUNDING_BASE_HOURS
    rounded = nearest(scaled_numerator, down)
    lower = -((-floor) // 10 ** (PREMIUM_SCALE - rate_scale))  # a cap never widens by rounding
    upper = cap // 10 ** (PREMIUM_SCALE - rate_scale)
    return min(max(rounded, lower), upper)


def next_settlement(now: int, interval_hours: int) -> int:
    """The first settlement strictly after ``now``; settlements are aligned to 00:00 UTC."""
    interval = interval_hours * HOUR_MS
    return (now // interval + 1) * interval


class PremiumAverage:
    """Time-weighted average of premium samples, one per ``sample_ms`` of event time,
    weighted 1, 2, …, n within the current funding interval (module docstring)."""

    __slots__ = ("_bucket", "_count", "_weighted", "sample_ms")

    def __init__(self, sample_ms: int) -> None:
        if sample_ms < 1:
            raise ValueError(f"sample_ms={sample_ms!r}: must be >= 1")
        self.sample_ms = sample_ms
        self._bucket = -1
        self._count = 0
        self._weighted = 0

    def observe(self, now: int, premium: int) -> None:
        bucket = now // self.sample_ms
        if bucket == self._bucket:
            return
        self._bucket = bucket
        self._count += 1
        self._weighted += self._count * premium

    @property
    def samples(self) -> int:
        return self._count

    def average(self) -> int:
        """The linear-weighted average (0 with no samples: the rate falls back to I)."""
        if not self._count:
            return 0
        return nearest(2 * self._weighted, self._count * (self._count + 1))

    def reset(self) -> None:
        self._count = 0
        self._weighted = 0

    def state(self) -> list[int]:
        return [self._bucket, self._count, self._weighted]

    def restore(self, data: list[int]) -> None:
        self._bucket, self._count, self._weighted = data
