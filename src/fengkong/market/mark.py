"""Mark price of perpetuals and dated futures (Binance USDⓈ-M / COIN-M, margin-mechanics.md §1.6).

::

    Perpetual:  Mark = median(Price1, Price2, LastPrice)
                Price1 = Index × (1 + FundingRate × TimeUntilFunding / FundingInterval)
                Price2 = Index + MovingAverage(basis),   basis_i = (Bid1_i + Ask1_i)/2 − Index_i
    Dated:      Mark = Index + MovingAverage(basis)

Prices are integers at one scale; the funding rate is an integer at ``rate_scale`` decimals.
Every intermediate division rounds to the nearest unit, ties to even; the component then rounds
the mark to the instrument tick with the same rule (:func:`round_to_tick`). The basis window
(``N`` samples, one every ``sample_ms``) is the caller's configuration: Binance used 1 minute,
then from 2025-09-18 30 samples one per second.
"""

from __future__ import annotations

from collections import deque

from fengkong.market.index import nearest

__all__ = [
    "BasisAverage",
    "funding_adjusted_index",
    "mark_dated",
    "mark_perpetual",
    "round_to_tick",
]


def funding_adjusted_index(
    index: int, rate: int, rate_scale: int, ms_to_funding: int, interval_ms: int
) -> int:
    """Price1 = index × (1 + rate × ms_to_funding / interval_ms), nearest unit."""
    one = 10**rate_scale * interval_ms
    return nearest(index * (one + rate * ms_to_funding), one)


def mark_perpetual(price1: int, price2: int, last: int) -> int:
    """Median of the three candidate prices."""
    return sorted((price1, price2, last))[1]


def mark_dated(index: int, basis_average: int) -> int:
    return index + basis_average


def round_to_tick(price: int, tick: int) -> int:
    """``price`` to the nearest multiple of ``tick`` (same scale), ties to even multiples."""
    return nearest(price, tick) * tick


class BasisAverage:
    """Moving average of ``mid − index`` over the last ``window`` samples, one per ``sample_ms``.

    A sample is taken at most once per ``sample_ms`` bucket of event time (the first
    observation in each bucket); an empty window averages to 0 (mark = index).
    """

    __slots__ = ("_average", "_bucket", "_samples", "_sum", "sample_ms", "window")

    def __init__(self, window: int, sample_ms: int) -> None:
        if window < 1 or sample_ms < 1:
            raise ValueError(f"window={window!r}, sample_ms={sample_ms!r}: must be >= 1")
        self.window = window
        self.sample_ms = sample_ms
        self._samples: deque[int] = deque()
        self._sum = 0
        self._bucket = -1
        self._average: int | None = (
            0  # of the samples in the window; None: not computed since a change
        )

    def observe(self, now: int, basis: int) -> None:
        bucket = now // self.sample_ms
        if bucket == self._bucket:
            return
        self._bucket = bucket
        self._samples.append(basis)
        self._sum += basis
        self._average = None
        if len(self._samples) > self.window:
            self._sum -= self._samples.popleft()

    def average(self) -> int:
        average = self._average
        if average is None:
            average = self._average = nearest(self._sum, len(self._samples))
        return average

    def state(self) -> list:
        return [self._bucket, list(self._samples)]

    def restore(self, data: list) -> None:
        self._bucket, samples = data
        self._samples = deque(samples)
        self._sum = sum(samples)
        self._average = nearest(self._sum, len(samples)) if samples else 0
