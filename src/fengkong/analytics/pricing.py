"""Option values for scenario revaluation, through the market-data layer's Black-76.

The model itself lives in :mod:`fengkong.market.options` (``black76_vec``); this adapter only
adds what revaluation over a horizon needs: an option whose remaining life is used up by the
horizon (``t ≤ 0``) is worth its intrinsic value ``max(±(F − K), 0)`` at expiry.
"""

from __future__ import annotations

import numpy as np

from fengkong.market.options import black76_vec

__all__ = ["option_deltas", "option_values"]


def option_values(
    forward: np.ndarray,
    strike: np.ndarray,
    t: np.ndarray,
    vol: np.ndarray,
    rate: np.ndarray,
    is_call: np.ndarray,
) -> np.ndarray:
    """Black-76 prices in quote terms (broadcast together); intrinsic value where ``t ≤ 0``."""
    f, k, tt, v, r, c = np.broadcast_arrays(
        np.asarray(forward, dtype=float),
        np.asarray(strike, dtype=float),
        np.asarray(t, dtype=float),
        np.asarray(vol, dtype=float),
        np.asarray(rate, dtype=float),
        np.asarray(is_call, dtype=bool),
    )
    intrinsic = np.where(c, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0))
    alive = tt > 0.0
    if not alive.any():
        return intrinsic
    out = intrinsic.copy()
    out[alive] = black76_vec(f[alive], k[alive], tt[alive], v[alive], r[alive], c[alive]).price
    return out


def option_deltas(
    forward: np.ndarray,
    strike: np.ndarray,
    t: np.ndarray,
    vol: np.ndarray,
    rate: np.ndarray,
    is_call: np.ndarray,
) -> np.ndarray:
    """Black-76 ``∂V/∂F`` in quote terms; options must still be alive (``t > 0``)."""
    return black76_vec(forward, strike, t, vol, rate, is_call).delta
