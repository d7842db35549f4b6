"""Liquidation and bankruptcy prices of linear and inverse contracts, exact.

The liquidation price is the mark at which margin balance equals maintenance margin; the
bankruptcy price the mark at which margin balance is zero. Both are solved in exact rationals
(:class:`fractions.Fraction`) over the legs of one instrument that share a price: one leg in
one-way mode (``BOTH``), one or two legs in hedge mode (``LONG`` / ``SHORT``; in cross mode
they share one liquidation price), with the other cross positions' maintenance margin ``TMM``
and unrealized PnL ``UPNL`` held at their marks (both 0 for an isolated position, whose
wallet ``WB`` is its isolated margin).

Linear (USDⓈ-M), ``size`` in base units and ``entry = size × EP`` in quote, solving
``WB − TMM + UPNL + Σ side (size P − entry) = Σ (size P MMR − cum)``:

    LP = (WB − TMM + UPNL + Σcum − Σ side·entry) / (Σ size·MMR − Σ side·size)

which is Binance's formula (margin-mechanics.md §1.3: ``LP1 = (WB − TMM1 + UPNL1 + cumB +
cumL + cumS − Side1BOTH×Position1BOTH×EP1BOTH − Position1LONG×EP1LONG +
Position1SHORT×EP1SHORT) / (Position1BOTH×MMR_B + … − Side1BOTH×Position1BOTH −
Position1LONG + Position1SHORT)``).

Inverse (COIN-M), ``size`` = contracts × contract size in USD and ``entry = size / EP`` in
coin, solving ``WB − TMM + UPNL + Σ side (entry − size/P) = Σ (size/P × MMR − cum)``:

    LP = Σ size (MMR + side) / (WB − TMM + UPNL + Σcum + Σ side·entry)       (§2)

Tier consistency (§1.3): the MMR and cum of each leg are those of the bracket its notional
*at the liquidation price* falls into. Every assignment of brackets to the legs is solved and
the consistent roots kept; of those, the one nearest the reference price (the mark) is the
liquidation price, i.e. the first one the mark meets. No positive consistent root: None (the
position cannot be liquidated by price alone; Binance shows "--").

Rounding to the tick is in the exchange's favour: a price below which a position is
liquidated (long-like) is rounded up, one above which it is liquidated (short-like) down
(:func:`round_liquidation_price`; Bybit: "for long position, the bankruptcy price will be
rounded up … short rounded down", §4.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import product

from fengkong.margin.tiers import TierTable

__all__ = [
    "Leg",
    "LiquidationPrice",
    "bankruptcy_price",
    "equity_at",
    "liquidation_price",
    "maintenance_at",
    "round_liquidation_price",
    "solve_price",
]


@dataclass(frozen=True, slots=True)
class Leg:
    """One position leg of the instrument being solved.

    ``side`` +1 long, −1 short; ``size`` > 0: base units (linear) or face value in quote
    (inverse, contracts × contract size); ``entry``: the entry notional, ``size × EP`` quote
    (linear) or ``size / EP`` coin (inverse). ``tiers`` its bracket table.
    """

    side: int
    size: Fraction
    entry: Fraction
    tiers: TierTable

    def notional(self, price: Fraction, inverse: bool) -> Fraction:
        return self.size / price if inverse else self.size * price


@dataclass(frozen=True, slots=True)
class LiquidationPrice:
    """An exact root; ``brackets`` the bracket index of each leg at it; ``direction`` +1 when
    the account is liquidated as the mark falls to ``price`` (long-like), −1 as it rises."""

    price: Fraction
    brackets: tuple[int, ...]
    direction: int


def solve_price(
    legs: tuple[Leg, ...] | list[Leg],
    wallet: Fraction,
    *,
    inverse: bool,
    mmrs: tuple[Fraction, ...],
    cums: tuple[Fraction, ...],
    other_mm: Fraction = Fraction(0),
    other_upnl: Fraction = Fraction(0),
) -> tuple[Fraction, int] | None:
    """The price at which equity = MM for the given per-leg rates and amounts, and its
    direction; None when the equation has no positive solution."""
    const = wallet - other_mm + other_upnl + sum(cums, Fraction(0))
    if inverse:
        numerator = sum((leg.size * (m + leg.side) for leg, m in zip(legs, mmrs, strict=True)),
                        Fraction(0))  # fmt: skip
        denominator = const + sum((leg.side * leg.entry for leg in legs), Fraction(0))
        if denominator <= 0 or numerator == 0:
            return None
        price = numerator / denominator
        direction = 1 if numerator > 0 else -1
    else:
        numerator = const - sum((leg.side * leg.entry for leg in legs), Fraction(0))
        slope = sum((leg.side * leg.size - leg.size * m for leg, m in zip(legs, mmrs, strict=True)),
                    Fraction(0))  # fmt: skip
        if slope == 0:
            return None
        price = -numerator / slope
        direction = 1 if slope > 0 else -1
    if price <= 0:
        return None
    return price, direction


def liquidation_price(
    legs: tuple[Leg, ...] | list[Leg],
    wallet: Fraction,
    *,
    inverse: bool = False,
    other_mm: Fraction = Fraction(0),
    other_upnl: Fraction = Fraction(0),
    reference: Fraction | None = None,
) -> LiquidationPrice | None:
    """The tier-consistent liquidation price (module docstring); ``reference`` defaults to the
    first leg's average entry price."""
    legs = tuple(legs)
    if not legs:
        return None
    if reference is None:
        first = legs[0]
        reference = first.size / first.entry if inverse else first.entry / first.size
    candidates: list[LiquidationPrice] = []
    for brackets in product(*(range(len(leg.tiers.tiers)) for leg in legs)):
        mmrs = tuple(leg.tiers.mmr(b) for leg, b in zip(legs, brackets, strict=True))
        cums = tuple(leg.tiers.cum(b) for leg, b in zip(legs, brackets, strict=True))
        solved = solve_price(
            legs, wallet, inverse=inverse, mmrs=mmrs, cums=cums,
            other_mm=other_mm, other_upnl=other_upnl,
        )  # fmt: skip
        if solved is None:
            continue
        price, direction = solved
        consistent = all(
            leg.tiers.index_for_exact(leg.notional(price, inverse)) == b
            for leg, b in zip(legs, brackets, strict=True)
        )
        if consistent:
            candidates.append(LiquidationPrice(price, brackets, direction))
    if not candidates:
        return None
    return min(candidates, key=lambda c: (abs(c.price - reference), c.price))


def bankruptcy_price(
    legs: tuple[Leg, ...] | list[Leg],
    wallet: Fraction,
    *,
    inverse: bool = False,
    other_upnl: Fraction = Fraction(0),
) -> LiquidationPrice | None:
    """The price at which margin balance is 0 (MM = 0). Isolated linear long:
    ``BP = EP − IWB/qty``; short ``EP + IWB/qty`` (margin-mechanics.md §1.3)."""
    zeros = tuple(Fraction(0) for _ in legs)
    solved = solve_price(
        legs, wallet, inverse=inverse, mmrs=zeros, cums=zeros, other_upnl=other_upnl
    )
    if solved is None:
        return None
    return LiquidationPrice(solved[0], (), solved[1])


def equity_at(
    legs: tuple[Leg, ...] | list[Leg],
    wallet: Fraction,
    price: Fraction,
    *,
    inverse: bool = False,
    other_upnl: Fraction = Fraction(0),
) -> Fraction:
    """Margin balance at mark ``price``: ``WB + UPNL_other + Σ side (size P − entry)`` (linear)
    or ``WB + UPNL_other + Σ side (entry − size/P)`` (inverse)."""
    total = wallet + other_upnl
    for leg in legs:
        if inverse:
            total += leg.side * (leg.entry - leg.size / price)
        else:
            total += leg.side * (leg.size * price - leg.entry)
    return total


def maintenance_at(
    legs: tuple[Leg, ...] | list[Leg],
    price: Fraction,
    *,
    inverse: bool = False,
    other_mm: Fraction = Fraction(0),
) -> Fraction | None:
    """Maintenance margin at mark ``price``: ``TMM + Σ (notional × MMR − cum)`` with each leg's
    bracket at ``price``; None when a notional is beyond its table."""
    total = other_mm
    for leg in legs:
        notional = leg.notional(price, inverse)
        index = leg.tiers.index_for_exact(notional)
        if index is None:
            return None
        total += notional * leg.tiers.mmr(index) - leg.tiers.cum(index)
    return total


def round_liquidation_price(price: Fraction, tick: Fraction, direction: int) -> Fraction:
    """Round to a tick multiple in the exchange's favour: up when ``direction`` is +1
    (liquidated as the mark falls), down when −1."""
    steps = price / tick
    whole = steps.numerator // steps.denominator
    if direction > 0 and whole != steps:
        whole += 1
    return whole * tick
