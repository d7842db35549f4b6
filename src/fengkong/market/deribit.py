"""Deribit's option Greek conventions, and the valuation time of a chain snapshot.

Deribit's ``public/ticker`` Greeks for its inverse (BTC-settled) options are the Black-76
Greeks of the USD option on the expiry's underlying price ``F`` (its future or synthetic), with
zero rate, a 365-day year and the mark IV:

* ``delta``: ``∂V_usd/∂F`` = N(d1) for a call, N(d1) − 1 for a put (the USD, "Black-Scholes"
  delta, not the coin delta ``N(d1) − V/F`` of :func:`fengkong.market.options.to_coin`);
* ``gamma``: ``∂delta/∂F`` per 1 USD;
* ``vega``: USD per 1 volatility *point* (1%), i.e. Black-76 vega / 100;
* ``theta``: USD per calendar day, i.e. Black-76 theta / 365.

With ``rate = 0``, ``theta/vega = −100 σ / (730 t)`` whatever the strike, so every row yields its
time to expiry ``t = −100 σ / (730 · theta/vega)`` and so the snapshot's valuation time
``expiry − t``. Each printed value carries rounding (IV to 0.01 points, Greeks to the printed
digits), so each row gives an interval; the snapshot time is the intersection of all rows'
intervals (:func:`valuation_window`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from fengkong.market.options import Greeks, black76_vec

__all__ = [
    "YEAR_MS",
    "DeribitGreeks",
    "deribit_greeks",
    "half_unit",
    "time_to_expiry",
    "valuation_window",
]

YEAR_MS = 365 * 86_400_000


class DeribitGreeks(NamedTuple):
    delta: object
    gamma: object
    vega: object
    theta: object


def deribit_greeks(underlying, strike, t, mark_iv_fraction, is_call) -> DeribitGreeks:
    """Greeks in Deribit's units (module docstring); arrays or floats."""
    g: Greeks = black76_vec(underlying, strike, t, mark_iv_fraction, 0.0, is_call)
    return DeribitGreeks(g.delta, g.gamma, g.vega / 100.0, g.theta / 365.0)


def half_unit(text: str) -> float:
    """Half a unit of the last printed digit of a decimal text (``"4e-05"`` included)."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2]) - (int(exponent) if exponent else 0)
    return 0.5 * 10.0**-decimals


def time_to_expiry(iv_text: str, theta_text: str, vega_text: str) -> tuple[float, float]:
    """Years to expiry implied by a row's printed mark IV (%), theta and vega, and the
    half-width of the interval their printing rounding leaves: ``t = −σ% / (730 θ/vega)``."""
    iv, theta, vega = float(iv_text), float(theta_text), float(vega_text)
    t = -iv / (730.0 * theta / vega)
    relative = (
        half_unit(iv_text) / iv + half_unit(theta_text) / abs(theta) + half_unit(vega_text) / vega
    )
    return t, t * relative


class Window(NamedTuple):
    earliest: float
    latest: float

    @property
    def middle(self) -> float:
        return 0.5 * (self.earliest + self.latest)


def valuation_window(rows: Iterable[tuple[int, str, str, str]]) -> Window:
    """Intersection over rows ``(expiry_ms, mark_iv_percent, theta, vega)`` (texts as printed)
    of the valuation times each row allows; raises ValueError when they do not intersect."""
    earliest, latest = -float("inf"), float("inf")
    for expiry, iv_text, theta_text, vega_text in rows:
        t, spread = time_to_expiry(iv_text, theta_text, vega_text)
        centre = expiry - t * YEAR_MS
        earliest = max(earliest, centre - spread * YEAR_MS)
        latest = min(latest, centre + spread * YEAR_MS)
    if earliest > latest:
        raise ValueError(f"valuation_window: rows disagree ({earliest!r} > {latest!r})")
    return Window(earliest, latest)
