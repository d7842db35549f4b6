"""Market-data input events and pricing outputs (registered with the model's event union).

Prices and rates are decimal strings, parsed exactly against the declared scales; times are
ms since the epoch, UTC. Configuration is itself an event, so the index and mark rules in force
at any point are part of the journal.
"""

from __future__ import annotations

import msgspec

from fengkong.market.index import IndexStatus, OutlierRule
from fengkong.model.enums import Side
from fengkong.model.events import Event, Output, register_event, register_output

__all__ = [
    "BookTop",
    "FundingDue",
    "FundingRateSet",
    "IndexConfigured",
    "IndexConstituent",
    "IndexPrice",
    "MarkConfigured",
    "MarkPrice",
    "ObservedLiquidation",
    "OptionMark",
    "PerpetualFunding",
    "SourcePrice",
]


class IndexConstituent(msgspec.Struct, frozen=True):
    source: str
    weight: str  # decimal fraction, e.g. "0.25"; weights need not sum to 1


@register_event
class IndexConfigured(Event, tag=True):
    """Define or replace the index ``index`` (see :mod:`fengkong.market.index`).

    ``price_scale`` is the decimals of source and index prices; ``limit`` the outlier limit as a
    fraction ("0.03"); ``stale_after_ms`` the staleness limit; ``min_sources`` the quorum.
    """

    index: str
    price_scale: int
    constituents: list[IndexConstituent]
    rule: OutlierRule
    limit: str
    stale_after_ms: int
    min_sources: int


@register_event
class SourcePrice(Event, tag=True):
    """A constituent's price for ``symbol`` (the index name) at the source's own ``time``."""

    source: str
    symbol: str
    price: str
    time: int


class PerpetualFunding(msgspec.Struct, frozen=True, kw_only=True):
    """Funding parameters of a perpetual (rates per 8 h as decimal fractions)."""

    interval_hours: int = 8
    interest: str = "0.0001"
    clamp: str = "0.0005"
    cap: str = "0.003"
    floor: str = "-0.003"
    premium_sample_ms: int = 5_000


@register_event
class MarkConfigured(Event, tag=True):
    """Mark-price rules of a listed perpetual or dated future priced off ``index``.

    The basis moving average keeps ``basis_window`` samples, one per ``basis_sample_ms``.
    ``funding`` is required for a perpetual and absent for a dated future.
    """

    symbol: str
    index: str
    basis_window: int = 30
    basis_sample_ms: int = 1_000
    funding: PerpetualFunding | None = None


@register_event
class BookTop(Event, tag=True):
    """Top of the order book of ``symbol`` with the impact prices for its impact notional.

    ``impact_bid`` / ``impact_ask``: average fill prices of selling / buying the impact margin
    notional (:func:`fengkong.market.funding.impact_price`), computed by the book's owner.
    """

    symbol: str
    bid: str
    ask: str
    impact_bid: str
    impact_ask: str


@register_event
class FundingDue(Event, tag=True):
    """Settle the funding interval of ``symbol`` that ends at ``ts`` (scheduler's event)."""

    symbol: str


@register_event
class OptionMark(Event, tag=True):
    """An option's published mark: implied volatility (fraction) and its underlying's price."""

    symbol: str
    underlying_price: str
    mark_iv: str


@register_event
class ObservedLiquidation(Event, tag=True):
    """A forced order seen on another venue's public feed (e.g. Binance ``!forceOrder@arr``)."""

    venue: str
    symbol: str
    side: Side
    qty: str
    price: str
    average_price: str
    filled_qty: str


@register_output
class IndexPrice(Output, tag=True):
    """The index after an update; ``status`` other than ``ok`` means: do not use (fail closed)."""

    index: str
    price: str | None
    status: IndexStatus
    sources: list[str]


@register_output
class MarkPrice(Output, tag=True):
    """A new mark price of ``symbol``, at its tick; emitted only when the mark changes or its
    usability (``stale``) changes. A stale mark must not be used for margin or the gate."""

    symbol: str
    price: str
    index_price: str
    stale: bool


@register_output
class FundingRateSet(Output, tag=True):
    """The rate settled for one interval, with its inputs (premium at 12 decimals)."""

    symbol: str
    rate: str
    average_premium: str
    samples: int
    mark_price: str
