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

The option mark itself comes from a published implied volatility (Deribit's ``mark_iv``) and
the underlying price: :func:`black76_value` prices it with Black-76 (Black 1976, J. Financial
Economics 3; the float version is :func:`fengkong.market.options.black76`) in decimal
arithmetic at a fixed precision, so that the result — which ends up in reservations and
hence in the state hash — is the same on every machine (``ln``, ``exp`` and ``sqrt`` of
:mod:`decimal` are correctly rounded; the normal CDF is a fixed series).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from fractions import Fraction

from fengkong.model.enums import OptionKind

__all__ = [
    "YEAR_MS",
    "DeribitOptionParams",
    "OkxOptionParams",
    "black76_value",
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


YEAR_MS = 365 * 86_400_000
"""Milliseconds in the year of option time to expiry (365 days, as Deribit)."""
_CONTEXT = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN, Emax=999, Emin=-999)
_CDF_CUTOFF = decimal.Decimal(10)  # |x| beyond: N(x) is 0 or 1 to better than 1e-23


def _ncdf(x: decimal.Decimal) -> decimal.Decimal:
    """Standard normal CDF, ``1/2 + φ(x) Σ x^(2n+1) / (2n+1)!!`` (Marsaglia 2004, J. Stat.
    Software 11(4)), in ``_CONTEXT``; every operation is exactly specified decimal arithmetic."""
    ctx = _CONTEXT
    if x >= _CDF_CUTOFF:
        return decimal.Decimal(1)
    if x <= -_CDF_CUTOFF:
        return decimal.Decimal(0)
    square = ctx.multiply(x, x)
    term = total = x
    n = 1
    limit = decimal.Decimal("1e-36")
    while abs(term) > limit:
        term = ctx.divide(ctx.multiply(term, square), decimal.Decimal(2 * n + 1))
        total = ctx.add(total, term)
        n += 1
    two_pi = ctx.multiply(decimal.Decimal(2), _PI)
    density = ctx.divide(ctx.exp(ctx.divide(-square, decimal.Decimal(2))), ctx.sqrt(two_pi))
    return ctx.add(decimal.Decimal("0.5"), ctx.multiply(density, total))


_PI = decimal.Decimal("3.141592653589793238462643383279502884197")


def _dec(value: Fraction) -> decimal.Decimal:
    return _CONTEXT.divide(decimal.Decimal(value.numerator), decimal.Decimal(value.denominator))


def black76_value(
    kind: OptionKind, forward: Fraction, strike: Fraction, vol: Fraction, years: Fraction
) -> Fraction:
    """Undiscounted Black-76 value in quote per one underlying, deterministic::

        d1 = (ln(F/K) + vol² t / 2) / (vol √t),  d2 = d1 − vol √t
        call = F N(d1) − K N(d2),   put = K N(−d2) − F N(−d1)

    At or after expiry (``years <= 0``) or with no volatility: the intrinsic value.
    ``forward``, ``strike`` > 0; the result is exact as a fraction of the decimal computed at
    40 significant digits (never negative)."""
    if forward <= 0 or strike <= 0:
        raise ValueError(f"forward={forward!r}, strike={strike!r}: must be positive")
    call = kind is OptionKind.CALL
    if years <= 0 or vol <= 0:
        intrinsic = forward - strike if call else strike - forward
        return max(intrinsic, Fraction(0))
    ctx = _CONTEXT
    f, k = _dec(forward), _dec(strike)
    total_vol = ctx.multiply(_dec(vol), ctx.sqrt(_dec(years)))
    d1 = ctx.divide(
        ctx.add(ctx.ln(ctx.divide(f, k)), ctx.divide(ctx.multiply(total_vol, total_vol), 2)),
        total_vol,
    )
    d2 = ctx.subtract(d1, total_vol)
    if call:
        value = ctx.subtract(ctx.multiply(f, _ncdf(d1)), ctx.multiply(k, _ncdf(d2)))
    else:
        value = ctx.subtract(ctx.multiply(k, _ncdf(-d2)), ctx.multiply(f, _ncdf(-d1)))
    return max(Fraction(value), Fraction(0))
