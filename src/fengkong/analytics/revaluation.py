"""Full revaluation of every instrument under every scenario: P&L per contract held.

A scenario moves each underlying by a simple return ``R`` (``P₁ = P₀ (1 + R)``, from a log
return ``r`` as ``R = e^r − 1``). Per contract, in USD:

* spot, linear perpetual / future (Binance USDⓈ-M): ``m · P₀ · R`` (``m`` base units each);
* inverse perpetual / future (Binance COIN-M, ``m`` USD face each): the coin P&L
  ``m (1/P₀ − 1/P₁)`` converted at the scenario price ``P₁`` — which equals ``m · R``;
* option (``m`` units of the underlying): Black-76 value after the horizon minus today's,
  ``m (V(F₁, K, t − h, k·σ, r) − V(F₀, K, t, σ, r))``, ``V`` from
  :mod:`fengkong.market.options`; an option the horizon carries past expiry pays its
  intrinsic value. ``k`` is a volatility multiplier (1 unless stressed). A coin-settled
  (Deribit) option's P&L is its coin value change converted at ``F₁``:
  ``m (V₁/F₁ − V₀/F₀) F₁``.

Options are valued in full under each scenario, never from delta. The P&L of a portfolio
holding ``q`` contracts is then ``unit_pnl @ q`` — one matrix product for many portfolios.
"""

from __future__ import annotations

import numpy as np

from fengkong.analytics.instruments import DAYS_PER_YEAR, InstrumentTable
from fengkong.analytics.pricing import option_deltas, option_values

__all__ = ["delta_exposures", "unit_pnl"]


def unit_pnl(
    table: InstrumentTable,
    asset_returns: np.ndarray,
    horizon_days: int = 1,
    vol_multiplier: float = 1.0,
) -> np.ndarray:
    """P&L per contract of each instrument under each scenario: ``(scenarios, instruments)``.

    ``asset_returns`` holds simple returns, one column per ``table.assets``.
    """
    returns = np.atleast_2d(np.asarray(asset_returns, dtype=float))
    if returns.shape[1] != len(table.assets):
        raise ValueError(
            f"asset_returns has {returns.shape[1]} columns; the table's assets are {table.assets}"
        )
    if not np.isfinite(returns).all() or (returns <= -1.0).any():
        raise ValueError("asset_returns: must be finite simple returns above -100%")
    if horizon_days < 0:
        raise ValueError(f"horizon_days={horizon_days!r}: must be >= 0 (0 = instantaneous)")
    if not vol_multiplier > 0.0:
        raise ValueError(f"vol_multiplier={vol_multiplier!r}: must be positive")
    moves = returns[:, table.asset_index]  # (S, I)
    out = np.empty_like(moves)
    linear = table.is_linear
    out[:, linear] = moves[:, linear] * (table.multiplier * table.price)[linear]
    inverse = table.is_inverse
    if inverse.any():
        start = table.price[inverse]
        end = start * (1.0 + moves[:, inverse])
        out[:, inverse] = table.multiplier[inverse] * (1.0 / start - 1.0 / end) * end
    options = table.is_option
    if options.any():
        start = table.price[options]
        end = start * (1.0 + moves[:, options])
        strike, rate, is_call = table.strike[options], table.rate[options], table.is_call[options]
        t0 = table.years_to_expiry[options]
        vol = table.volatility[options]
        value_now = option_values(start, strike, t0, vol, rate, is_call)
        value_then = option_values(
            end, strike, t0 - horizon_days / DAYS_PER_YEAR, vol * vol_multiplier, rate, is_call
        )
        coin = table.coin_settled[options]
        coin_change = (value_then / end - value_now / start) * end
        change = np.where(coin, coin_change, value_then - value_now)
        out[:, options] = table.multiplier[options] * change
    return out


def delta_exposures(table: InstrumentTable, quantities: np.ndarray) -> np.ndarray:
    """USD P&L per unit simple return of each asset (first-order), for ``quantities`` held.

    Linear: ``q m P``; inverse: ``q m``; option: ``q m Δ F`` (coin-settled: ``q m (Δ − V/F) F``).
    """
    q = np.asarray(quantities, dtype=float)
    per_contract = np.where(table.is_inverse, table.multiplier, table.multiplier * table.price)
    options = table.is_option
    if options.any():
        args = (
            table.price[options],
            table.strike[options],
            table.years_to_expiry[options],
            table.volatility[options],
            table.rate[options],
            table.is_call[options],
        )
        delta = option_deltas(*args)
        value = option_values(*args)
        delta = np.where(table.coin_settled[options], delta - value / table.price[options], delta)
        per_contract = per_contract.copy()
        per_contract[options] = table.multiplier[options] * delta * table.price[options]
    exposure = np.zeros(len(table.assets))
    np.add.at(exposure, table.asset_index, q * per_contract)
    return exposure
