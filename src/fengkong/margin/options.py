"""Standard (non-portfolio) margin for short options; long options pay the premium.

Two parameterised models, in units of the underlying per one-underlying option (multiply by
the contract multiplier and the number of contracts); marks are option prices in the same
unit (coin for inverse options, quote for USDⓈ options with the terms multiplied by the index,
as OKX describes). ``OTM`` is the out-of-the-money amount: ``max(K − S, 0)`` for a call,
``max(S − K, 0)`` for a put.

Deribit (margin-mechanics.md §5.2, inverse options)::

    short call IM = max(0.15 − OTM/S, 0.1) + mark           MM = 0.075 + mark
    short put  MM = max(0.075, 0.075 × mark) + mark
    short put  IM = max(max(0.15 − OTM/S, 0.1) + mark, MM)

OKX (§4.2, unified account, non-portfolio), with the seller's ``MarginFactor``::

    short IMR      = max(a, b − OTM/F) × MarginFactor + mark           (a = 0.1, b = 0.15)
    short call MMR = c × MarginFactor + mark
    short put  MMR = max(c, c × mark) × MarginFactor + mark           (c = 0.03 BTC, 0.05 ETH)
    sell-to-open   = max(position IMR − order price + fee, MinOpenOrderMargin)

Long options need no margin: the buyer pays the premium at the fill (IM = MM = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from fengkong.model.enums import OptionKind

__all__ = [
    "DeribitOptionParams",
    "OkxOptionParams",
    "deribit_short_option_margin",
    "okx_sell_to_open_margin",
    "okx_short_option_margin",
    "otm_amount",
]


def otm_amount(kind: OptionKind, strike: Fraction, underlying: Fraction) -> Fraction:
    """How far the option is out of the money (0 when in or at the money)."""
    distance = strike - underlying if kind is OptionKind.CALL else underlying - strike
    return max(distance, Fraction(0))


@dataclass(frozen=True, slots=True)
class DeribitOptionParams:
    """Deribit's published constants (BTC and ETH inverse options)."""

    im_base: Fraction = Fraction(15, 100)
    im_floor: Fraction = Fraction(1, 10)
    mm_base: Fraction = Fraction(75, 1000)


def deribit_short_option_margin(
    kind: OptionKind,
    strike: Fraction,
    underlying: Fraction,
    mark: Fraction,
    params: DeribitOptionParams = DeribitOptionParams(),
) -> tuple[Fraction, Fraction]:
    """``(IM, MM)`` per one-coin short option, in coin (module docstring)."""
    otm = otm_amount(kind, strike, underlying)
    base = max(params.im_base - otm / underlying, params.im_floor) + mark
    if kind is OptionKind.CALL:
        maintenance = params.mm_base + mark
        return base, maintenance
    maintenance = max(params.mm_base, params.mm_base * mark) + mark
    return max(base, maintenance), maintenance


@dataclass(frozen=True, slots=True)
class OkxOptionParams:
    """OKX's ``a``, ``b``, ``c`` (``c`` = 0.03 for BTC, 0.05 for ETH)."""

    a: Fraction = Fraction(1, 10)
    b: Fraction = Fraction(15, 100)
    c: Fraction = Fraction(3, 100)


def okx_short_option_margin(
    kind: OptionKind,
    otm: Fraction,
    forward: Fraction,
    mark: Fraction,
    margin_factor: Fraction,
    params: OkxOptionParams = OkxOptionParams(),
) -> tuple[Fraction, Fraction]:
    """``(IMR, MMR)`` per one-coin short option (module docstring)."""
    initial = max(params.a, params.b - otm / forward) * margin_factor + mark
    if kind is OptionKind.CALL:
        maintenance = params.c * margin_factor + mark
    else:
        maintenance = max(params.c, params.c * mark) * margin_factor + mark
    return initial, maintenance


def okx_sell_to_open_margin(
    position_margin: Fraction, order_price: Fraction, fee: Fraction, minimum: Fraction
) -> Fraction:
    """``max(position margin − order price + fee, MinOpenOrderMargin)`` per contract: the
    premium the order will receive offsets its margin, down to the minimum."""
    return max(position_margin - order_price + fee, minimum)
