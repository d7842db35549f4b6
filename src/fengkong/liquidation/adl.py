"""Auto-deleveraging ranking: scores, the per-side queue, and the 1–5 quintile shown to users.

When the insurance fund cannot cover a bankrupt position, opposite-side positions are closed
at the bankruptcy price of the liquidated order, highest score first (margin-mechanics.md §1.5,
§7). Longs and shorts are ranked separately.

Binance (ADL FAQ https://www.binance.com/en/support/faq/360033525471, formula quoted in
https://dev.binance.vision/t/how-to-caculating-leverage-pnl-quantile/17801)::

    PnL%         = max(0, UnrealizedProfit) / max(1, WalletBalance)
    MarginRatio  = MaintenanceMargin / (WB + UP)   (0 when WB + UP <= 0)
    LeveragePnL  = PnL% × MarginRatio

BitMEX (https://bitmex.com/app/autoDeleveraging)::

    PnL%              = (MarkValue − AvgEntryValue) / |AvgEntryValue|
    EffectiveLeverage = |MarkValue| / (MarkValue − BankruptValue)
    Ranking           = PnL% × EffectiveLeverage   if PnL% > 0
                      = PnL% / EffectiveLeverage   otherwise

Values are signed (negative for a short). The score functions are element-wise over numpy
arrays: float arrays for a whole book (screening-grade; the ADL fill itself is exact), or
object arrays of :class:`fractions.Fraction` for exact figures.

Quintile ("5 lights"): within one side, a position's rank quantile ``q = #{scores <= its
score} / N`` (ties share the higher rank), shown as ``ceil(5 q)``: 5 = the top 20 %, first in
the queue; 1 = the bottom 20 %.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fengkong.liquidation.book import PositionBook
from fengkong.liquidation.screen import Screener, position_margin

__all__ = [
    "Ranks",
    "adl_queue",
    "binance_margin_ratio",
    "binance_pnl_pct",
    "binance_score",
    "bitmex_score",
    "instrument_ranks",
    "quintiles",
]


def binance_pnl_pct(upnl: np.ndarray, wallet: np.ndarray) -> np.ndarray:
    """``max(0, UP) / max(1, WB)``."""
    return np.maximum(np.asarray(upnl), 0) / np.maximum(np.asarray(wallet), 1)


def binance_margin_ratio(upnl: np.ndarray, wallet: np.ndarray, maint: np.ndarray) -> np.ndarray:
    """``MM / (WB + UP)``, 0 when ``WB + UP <= 0``."""
    balance = np.asarray(wallet) + np.asarray(upnl)
    positive = balance > 0
    return np.where(positive, np.asarray(maint) / np.where(positive, balance, 1), 0)


def binance_score(upnl: np.ndarray, wallet: np.ndarray, maint: np.ndarray) -> np.ndarray:
    """Binance ``LeveragePnL = PnL% × MarginRatio``."""
    return binance_pnl_pct(upnl, wallet) * binance_margin_ratio(upnl, wallet, maint)


def bitmex_score(
    mark_value: np.ndarray, entry_value: np.ndarray, bankrupt_value: np.ndarray
) -> np.ndarray:
    """BitMEX ``PnL% × EffectiveLeverage`` (``PnL% / EffectiveLeverage`` when PnL% < 0)."""
    mark_value = np.asarray(mark_value)
    entry_value = np.asarray(entry_value)
    pnl_pct = (mark_value - entry_value) / abs(entry_value)
    leverage = abs(mark_value) / (mark_value - np.asarray(bankrupt_value))
    return np.where(pnl_pct > 0, pnl_pct * leverage, pnl_pct / leverage)


def quintiles(scores: np.ndarray, long: np.ndarray) -> np.ndarray:
    """The 1–5 ADL indicator of every position, longs and shorts ranked separately."""
    scores = np.asarray(scores, dtype=np.float64)
    long = np.asarray(long, dtype=np.bool_)
    lights = np.zeros(scores.size, dtype=np.int8)
    for side in (long, ~long):
        group = scores[side]
        if group.size == 0:
            continue
        at_or_below = np.searchsorted(np.sort(group), group, side="right")
        lights[side] = np.ceil(5 * at_or_below / group.size).astype(np.int8)
    return lights


def adl_queue(scores: np.ndarray, long: np.ndarray, side_long: bool) -> np.ndarray:
    """Indices of the ``side_long`` positions in deleveraging order: highest score first,
    ties by index (earliest registered first), so the order is deterministic."""
    scores = np.asarray(scores, dtype=np.float64)
    candidates = np.flatnonzero(np.asarray(long, dtype=np.bool_) == side_long)
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order]


class Ranks(NamedTuple):
    """ADL ranks of one instrument's positions, ordered by account index then leg: the
    account index and ``leg`` (0 one-way, 1 hedge long, 2 hedge short) identify a position."""

    accounts: np.ndarray
    legs: np.ndarray
    long: np.ndarray
    scores: np.ndarray
    lights: np.ndarray


def instrument_ranks(screener: Screener, symbol: str) -> Ranks:
    """Binance ADL ranks of every position in ``symbol`` at the current marks.

    Per position: ``UP`` its unrealized PnL; ``WB`` and the margin ratio those of its margin
    group — the cross wallet and the cross group's ``MM / equity`` in its settlement asset, or
    for an isolated position its isolated margin and its own ``MM / (margin + UP)``. Float
    figures (screening-grade) for the indicator; the queue used to deleverage is re-ranked on
    exact values by the engine.
    """
    book: PositionBook = screener.book
    i = book.instruments.index[symbol]
    holders = np.sort(book.holder_accounts(i)).astype(np.int64)
    counts = book.count[holders].astype(np.int64)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    slots = np.repeat(book.start[holders], counts) + offsets
    accounts = np.repeat(holders, counts)
    mine = book.inst[slots] == i
    slots, accounts = slots[mine], accounts[mine]
    order = np.lexsort((book.leg[slots], accounts))
    slots, accounts = slots[order], accounts[order]
    upnl, _, mm = position_margin(book, slots)
    s = int(book.instruments.settle[i])
    isolated = book.isolated[slots]
    wallet = np.where(isolated, book.margin[slots], book.wallet[accounts, s])
    cross_equity, cross_maint, _ratio = screener.figures(holders)  # fresh, holders only
    row = np.searchsorted(holders, accounts)
    equity = np.where(isolated, book.margin[slots] + upnl, cross_equity[row, s])
    maint = np.where(isolated, mm, cross_maint[row, s])
    ratio = np.where(equity > 0, maint / np.where(equity > 0, equity, 1.0), 0.0)
    scores = binance_pnl_pct(upnl, wallet) * ratio
    long = book.size[slots] > 0
    return Ranks(accounts, book.leg[slots].astype(np.int8), long, scores, quintiles(scores, long))
