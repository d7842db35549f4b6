"""Venue-specific liquidation and margin models that differ from Binance's tiered formula.

Exact rationals in natural units (prices in quote, sizes in base or in USD face value);
callers round the result to the tick with
:func:`fengkong.margin.liquidation.round_liquidation_price` (exchange's favour).

* **BitMEX** (margin-mechanics.md §7) keeps the maintenance margin on the *entry* value, so the
  liquidation price is the bankruptcy price moved by the MM per contract:
  linear cross ``BP = EP − side × WB/qty``, ``LP = BP + side × MM/qty`` with
  ``MM = qty × EP × MMR``; inverse ``BP_long = EP/(1 + IM)``, ``LP_long = BP + EP × (MM +
  funding)``, ``BP_short = EP/(1 − IM)``, ``LP_short = BP − EP × (MM − funding)``.
* **Bybit inverse** (§4.1) puts the fee to close, valued at the bankruptcy price, into the
  margin: ``BP = size (side + fee) / (WB + side × size/EP)`` and the liquidation price solves
  ``side × size × (1/EP − 1/LP) = −(WB − size/EP × MMR − size × fee / BP)``.
* **Deribit futures** (§5.1): margin rates linear in the position size,
  ``IM = base_IM + size × k``, ``MM = base_MM + size × k``.
"""

from __future__ import annotations

from fractions import Fraction

__all__ = [
    "bitmex_inverse_bankruptcy_price",
    "bitmex_inverse_liquidation_price",
    "bitmex_linear_cross_prices",
    "bybit_inverse_bankruptcy_price",
    "bybit_inverse_liquidation_price",
    "deribit_future_margin",
]


def bitmex_linear_cross_prices(
    wallet: Fraction, qty: Fraction, entry: Fraction, mmr: Fraction, side: int
) -> tuple[Fraction, Fraction]:
    """``(liquidation, bankruptcy)`` of a BitMEX linear cross position (§7 example)."""
    bankruptcy = entry - side * wallet / qty
    maintenance = qty * entry * mmr
    return bankruptcy + side * maintenance / qty, bankruptcy


def bitmex_inverse_bankruptcy_price(entry: Fraction, initial_rate: Fraction, side: int) -> Fraction:
    """``EP / (1 + IM)`` long, ``EP / (1 − IM)`` short; ``IM = 1/leverage`` net of fees."""
    return entry / (1 + side * initial_rate)


def bitmex_inverse_liquidation_price(
    entry: Fraction,
    initial_rate: Fraction,
    maintenance_rate: Fraction,
    side: int,
    funding: Fraction = Fraction(0),
) -> Fraction:
    """``BP + EP (MM + funding)`` long, ``BP − EP (MM − funding)`` short (BitMEX support)."""
    bankruptcy = bitmex_inverse_bankruptcy_price(entry, initial_rate, side)
    if side > 0:
        return bankruptcy + entry * (maintenance_rate + funding)
    return bankruptcy - entry * (maintenance_rate - funding)


def bybit_inverse_bankruptcy_price(
    wallet: Fraction, size: Fraction, entry: Fraction, taker_fee: Fraction, side: int
) -> Fraction:
    """Bybit: long ``(1 + fee) × size / (size/EP + WB)`` ("BP = 1.00075 × 10000 / (10000/8000
    + 0.5)"); the short is the same balance equation solved for a short."""
    return size * (side + taker_fee) / (wallet + side * size / entry)


def bybit_inverse_liquidation_price(
    wallet: Fraction,
    size: Fraction,
    entry: Fraction,
    mmr: Fraction,
    taker_fee: Fraction,
    side: int,
) -> Fraction:
    """Solve ``side × size × (1/EP − 1/LP) = −(WB − size/EP × MMR − size × fee / BP)``."""
    bankruptcy = bybit_inverse_bankruptcy_price(wallet, size, entry, taker_fee, side)
    cushion = wallet - size / entry * mmr - size * taker_fee / bankruptcy
    return 1 / (1 / entry + cushion / (side * size))


def deribit_future_margin(
    size: Fraction, price: Fraction, base_rate: Fraction, per_size_rate: Fraction
) -> tuple[Fraction, Fraction]:
    """``(rate, margin in coin)``: ``rate = base + size × k``, margin ``size × rate``; in
    quote the margin is ``size × rate × price`` (Deribit Linear Perpetual page)."""
    rate = base_rate + size * per_size_rate
    return rate, size * rate
