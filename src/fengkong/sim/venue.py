"""A simulated venue that fills liquidation orders against a square-root depth model.

Price impact grows with the square root of size — the empirical "square-root law" of market
impact (Tóth et al., "Anomalous price impact and the critical nature of liquidity", Phys. Rev.
X 1, 021006, 2011; Almgren et al., "Direct estimation of equity market impact", 2005). The
``q``-th unit sold (bought) into the book at reference price ``P`` trades at

    P × (1 ∓ (half_spread + eta × sqrt(q / depth)))

so selling ``Q`` units moves the price by ``half_spread + eta × sqrt(Q / depth)`` and fills
on average ``half_spread + 2/3 × eta × sqrt(Q / depth)`` away from ``P``.

Parameters (:class:`DepthModel`): ``half_spread`` (fraction of price, default 1 bp),
``eta`` (the impact of selling ``depth`` units, default 1 %), ``depth`` (in contracts, i.e.
lots: the size that moves the price by ``eta``). Defaults are illustrative for a liquid
perpetual, not estimates for any venue.

**Exact fills.** An order is filled in child fills of whole lots at whole ticks: the book
is cut at fixed cumulative quantities ``ceil(g^m)`` lots (``g`` = ``growth``), each slice
filled at the price of its last unit, rounded to the tick against the taker (a sell down, a
buy up). The slices do not depend on the order, so a larger order fills a superset of a
smaller one's slices and its average price is never better (monotone impact). Child
quantities sum exactly to the filled quantity; what the limit price refuses stays unfilled
(the IOC at the bankruptcy price of a liquidation).

**Resilience.** :class:`Venue` remembers the depth consumed per symbol; it recovers
exponentially with ``half_life_ms`` of event time, so a cascade of liquidations walks further
down the book than one order at a time. Deterministic: time is the caller's timestamp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["ChildFill", "DepthModel", "Venue", "VenueFill"]


@dataclass(frozen=True)
class DepthModel:
    """Square-root depth of one instrument (module docstring)."""

    depth: float = 10_000.0
    eta: float = 0.01
    half_spread: float = 0.0001
    growth: float = 1.25
    half_life_ms: int = 60_000

    def impact(self, consumed: float) -> float:
        """Relative distance from the reference price of the unit at ``consumed`` lots."""
        return self.half_spread + self.eta * math.sqrt(max(consumed, 0.0) / self.depth)

    def boundary(self, m: int) -> int:
        """Cumulative lots at the end of slice ``m`` (strictly increasing, fixed)."""
        return max(m + 1, math.ceil(self.growth**m))


@dataclass(frozen=True)
class ChildFill:
    price: int  # ticks
    qty: int  # lots


@dataclass(frozen=True)
class VenueFill:
    """The outcome of one order: child fills (worsening), filled and unfilled lots."""

    children: tuple[ChildFill, ...]
    filled: int
    unfilled: int

    def average_price(self) -> float | None:
        if not self.filled:
            return None
        return sum(c.price * c.qty for c in self.children) / self.filled


@dataclass
class Venue:
    """Per-symbol depth models with depth consumption that recovers over time."""

    models: dict[str, DepthModel]
    consumed: dict[str, tuple[float, int]] = field(default_factory=dict)  # lots, at time

    def fill(
        self, symbol: str, sell: bool, qty: int, reference: int, limit: int | None, ts: int
    ) -> VenueFill:
        """Fill ``qty`` lots (> 0) of a sell (``sell``) or buy at reference price
        ``reference`` ticks, no worse than ``limit`` ticks (None: no limit), at time ``ts``."""
        if qty <= 0 or reference <= 0:
            raise ValueError(f"qty={qty}, reference={reference}: both must be positive")
        model = self.models[symbol]
        before, at = self.consumed.get(symbol, (0.0, ts))
        if ts < at:
            raise ValueError(f"ts={ts} is before the venue's last fill at {at}")
        start = before * 0.5 ** ((ts - at) / model.half_life_ms)
        result = walk(model, sell, qty, reference, limit, start)
        self.consumed[symbol] = (start + result.filled, ts)
        return result


def walk(
    model: DepthModel, sell: bool, qty: int, reference: int, limit: int | None, start: float
) -> VenueFill:
    """Fill against ``model`` with ``start`` lots of depth already consumed."""
    children: list[ChildFill] = []
    filled = 0
    m = 0
    offset = math.floor(start)
    while model.boundary(m) <= offset:
        m += 1
    while filled < qty:
        end = model.boundary(m) - offset
        size = min(end - filled, qty - filled)
        move = model.impact(offset + filled + size)
        raw = reference * (1.0 - move) if sell else reference * (1.0 + move)
        price = math.floor(raw) if sell else math.ceil(raw)
        price = max(price, 1)
        if limit is not None and (price < limit if sell else price > limit):
            break
        if children and children[-1].price == price:
            children[-1] = ChildFill(price, children[-1].qty + size)
        else:
            children.append(ChildFill(price, size))
        filled += size
        m += 1
    return VenueFill(tuple(children), filled, qty - filled)
