"""Revaluation and screening of the position book on a mark move (compiled, parallel).

For every account, per settlement asset ``s`` (cross) and per isolated position
(margin-mechanics.md §1.1, §1.2, §2)::

    equity  = wallet_s + Σ UPNL          UPNL = size × mark − entry (linear)
                                              = entry − size / mark (inverse)
    MM      = Σ notional × MMR(bracket of notional) − cum(bracket)
    ratio   = MM / equity                (inf when equity <= 0 < MM; 0 without positions)
    liquidation when equity <= MM        (Binance: margin ratio >= 100 %)

An isolated position's equity is its isolated margin plus its UPNL. A notional beyond the
last bracket's cap is over the position limit and always a candidate (fail closed).

**Floats screen, integers decide.** The kernels run in float64 on the book's mirror; the
exact model (:mod:`fengkong.liquidation.exact`) rounds every term in the exchange's favour
(UPNL down, notional and MM up, each by at most one minor unit) and the float sums carry a
relative error far below 1e-12 of the gross magnitude ``G = |wallet| + Σ (notional +
|entry|)``. So a group is flagged when

    equity − MM <= REL_BAND × G + UNIT_BAND × positions × unit

with ``REL_BAND`` = 1e-9 and ``UNIT_BAND`` = 8 minor units per position. Every exact
candidate is therefore flagged (no false negatives, tested on random and adversarial books);
the few flagged accounts inside the band that are not exact candidates are dropped by the
exact re-check. A bracket chosen on either side of a cap by float noise changes MM by at most
``|notional − cap| × ΔMMR`` plus cum's rounding, both inside the band, because ``cum`` makes
MM continuous across brackets.

Two ticks: :meth:`Screener.tick_all` (every instrument's mark, every account, ``prange``
over accounts) and :meth:`Screener.tick_instrument` (one mark; only the accounts holding it,
through the book's per-instrument holder index). Results persist between ticks: an account
that holds nothing of the ticked instrument keeps its last figures, which are still valid.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from fengkong.liquidation.book import PositionBook
from fengkong.liquidation.instruments import MissingMarkError

__all__ = ["PARALLEL_MIN_ACCOUNTS", "REL_BAND", "UNIT_BAND", "Screener", "position_margin"]

REL_BAND = 1e-9
UNIT_BAND = 8.0
PARALLEL_MIN_ACCOUNTS = 50_000
"""Below this many accounts a tick runs on one thread: a parallel region waits for every
worker to be scheduled, which on shared cores can cost more than the work (measured: ~8 ms
for any parallel call while another process held one of this machine's two cores)."""


@numba.njit(cache=True, inline="always")
def _revalue(
    a, wallet, start, count, inst, size, entry, margin, isolated,
    price, sign, settle, caps, mmr, cum, last, limit, unit_band, equity, maint, ratio,
):  # fmt: skip
    """Revalue account ``a`` into ``equity/maint/ratio[a]``; return True if it is flagged.

    One pass over the account's block. Per position, with ``p`` = mark (linear) or 1/mark
    (inverse) and ``sign`` +1 / −1: ``x = size × p``, ``UPNL = sign × (x − entry)``,
    ``notional = |x|``. ``ratio[a]`` accumulates each cross group's band until the end.
    """
    assets = wallet.shape[1]
    for s in range(assets):
        equity[a, s] = wallet[a, s]
        maint[a, s] = 0.0
        ratio[a, s] = 0.0
    flagged = False
    for k in range(start[a], start[a] + count[a]):
        i = inst[k]
        s = settle[i]
        x = size[k] * price[i]
        upnl = sign[i] * (x - entry[k])
        notional = abs(x)
        t = 0
        top = last[i]
        while t < top and notional > caps[i, t]:
            t += 1
        mm = notional * mmr[i, t] - cum[i, t]
        band = REL_BAND * (notional + abs(entry[k])) + unit_band[s]
        if notional > limit[i]:  # over the last bracket: always a candidate
            band = np.inf
        if isolated[k]:
            held = margin[k]
            if held + upnl - mm <= band + REL_BAND * abs(held):
                flagged = True
        else:
            equity[a, s] += upnl
            maint[a, s] += mm
            ratio[a, s] += band
    for s in range(assets):
        band = ratio[a, s]
        e = equity[a, s]
        m = maint[a, s]
        if band > 0.0 and e - m <= band + REL_BAND * abs(wallet[a, s]):
            flagged = True
        ratio[a, s] = m / e if e > 0.0 else (np.inf if m > 0.0 else 0.0)
    return flagged


@numba.njit(cache=True, parallel=True)
def _tick_all(
    n, wallet, start, count, inst, size, entry, margin, isolated,
    price, sign, settle, caps, mmr, cum, last, limit, unit_band, equity, maint, ratio, flags,
):  # fmt: skip
    for a in prange(n):
        flags[a] = _revalue(a, wallet, start, count, inst, size, entry, margin, isolated,
                            price, sign, settle, caps, mmr, cum, last, limit, unit_band,
                            equity, maint, ratio)  # fmt: skip


@numba.njit(cache=True)
def _tick_all_serial(
    n, wallet, start, count, inst, size, entry, margin, isolated,
    price, sign, settle, caps, mmr, cum, last, limit, unit_band, equity, maint, ratio, flags,
):  # fmt: skip
    for a in range(n):
        flags[a] = _revalue(a, wallet, start, count, inst, size, entry, margin, isolated,
                            price, sign, settle, caps, mmr, cum, last, limit, unit_band,
                            equity, maint, ratio)  # fmt: skip


@numba.njit(cache=True)
def _tick_accounts_serial(
    accounts, wallet, start, count, inst, size, entry, margin, isolated,
    price, sign, settle, caps, mmr, cum, last, limit, unit_band, equity, maint, ratio, flags,
):  # fmt: skip
    for j in range(accounts.shape[0]):
        a = accounts[j]
        flags[a] = _revalue(a, wallet, start, count, inst, size, entry, margin, isolated,
                            price, sign, settle, caps, mmr, cum, last, limit, unit_band,
                            equity, maint, ratio)  # fmt: skip


@numba.njit(cache=True, parallel=True)
def _tick_accounts(
    accounts, wallet, start, count, inst, size, entry, margin, isolated,
    price, sign, settle, caps, mmr, cum, last, limit, unit_band, equity, maint, ratio, flags,
):  # fmt: skip
    for j in prange(accounts.shape[0]):
        a = accounts[j]
        flags[a] = _revalue(a, wallet, start, count, inst, size, entry, margin, isolated,
                            price, sign, settle, caps, mmr, cum, last, limit, unit_band,
                            equity, maint, ratio)  # fmt: skip


def position_margin(book: PositionBook, slots: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(upnl, notional, mm)`` of the given arena slots at the current marks, vectorized
    (the kernel's per-position formulas, for reports and ADL ranks)."""
    columns = book.instruments
    price, sign, _, caps, mmr, cum, last, _, _ = columns.kernel_view(REL_BAND, UNIT_BAND)
    inst = book.inst[slots]
    x = book.size[slots] * price[inst]
    upnl = sign[inst] * (x - book.entry[slots])
    notional = np.abs(x)
    tier = np.minimum((notional[:, None] > caps[inst, :-1]).sum(axis=1), last[inst])
    mm = notional * mmr[inst, tier] - cum[inst, tier]
    return upnl, notional, mm


class Screener:
    """Screening state of one :class:`PositionBook`: per account and settlement asset the
    cross ``equity``, maintenance margin ``maint`` and margin ``ratio``; per account a
    candidate ``flags`` byte (cross group or any isolated position inside the band)."""

    def __init__(self, book: PositionBook) -> None:
        self.book = book
        self.equity = np.zeros((0, 1))
        self.maint = np.zeros((0, 1))
        self.ratio = np.zeros((0, 1))
        self.flags = np.zeros(0, dtype=np.bool_)

    def _fit(self) -> None:
        shape = (self.book.accounts, self.book.wallet.shape[1])
        if self.equity.shape[0] < shape[0] or self.equity.shape[1] != shape[1]:
            rows = max(shape[0], 2 * self.equity.shape[0])
            for name in ("equity", "maint", "ratio"):
                grown = np.zeros((rows, shape[1]))
                old = getattr(self, name)
                width = min(old.shape[1], shape[1])
                grown[: old.shape[0], :width] = old[:, :width]
                setattr(self, name, grown)
            flags = np.zeros(rows, dtype=np.bool_)
            flags[: self.flags.shape[0]] = self.flags
            self.flags = flags

    def _arrays(self) -> tuple:
        book = self.book
        return (
            book.wallet,
            book.start,
            book.count,
            book.inst,
            book.size,
            book.entry,
            book.margin,
            book.isolated,
            *book.instruments.kernel_view(REL_BAND, UNIT_BAND),
            self.equity,
            self.maint,
            self.ratio,
            self.flags,
        )

    def _check_marks(self, accounts: np.ndarray | None = None) -> None:
        """Refuse (fail closed) when an instrument held by ``accounts`` (every account when
        None) has no usable mark."""
        book = self.book
        columns = book.instruments
        finite = np.isfinite(columns.marks[: len(columns)])
        if finite.all():
            return
        missing = [
            columns.symbols[i]
            for i in np.flatnonzero(~finite)
            if book.holder_accounts(i).size
            and (accounts is None or np.isin(book.holder_accounts(i), accounts).any())
        ]
        if missing:
            raise MissingMarkError(missing)

    def tick_all(self, marks: np.ndarray | None = None) -> np.ndarray:
        """Revalue every account (``marks``: float per instrument, or the book's current
        marks); return the flagged accounts' indices, ascending."""
        if marks is not None:
            self.book.instruments.set_marks(marks)
        self._check_marks()
        self._fit()
        n = self.book.accounts
        kernel = _tick_all if n >= PARALLEL_MIN_ACCOUNTS else _tick_all_serial
        kernel(n, *self._arrays())
        return np.flatnonzero(self.flags[: self.book.accounts])

    def tick_instrument(self, symbol: str, price: int) -> np.ndarray:
        """New mark of ``symbol`` (integer price units): revalue only its holders; return
        those flagged, ascending. Their other instruments' marks must be set."""
        i = self.book.instruments.set_mark(symbol, price)
        return self.revalue(self.book.holder_accounts(i))

    def revalue(self, accounts: np.ndarray) -> np.ndarray:
        """Revalue the given accounts (distinct indices, e.g. after their positions changed)
        at the current marks; return those flagged, ascending."""
        accounts = np.asarray(accounts)
        if accounts.size == 0:
            return accounts.astype(np.int64)
        if accounts.dtype != np.int32:
            accounts = accounts.astype(np.int32)
        self._check_marks(accounts)
        self._fit()
        kernel = _tick_accounts if accounts.size >= PARALLEL_MIN_ACCOUNTS else _tick_accounts_serial
        kernel(accounts, *self._arrays())
        return np.sort(accounts[self.flags[accounts]]).astype(np.int64)

    def candidates(self) -> np.ndarray:
        """Every account flagged by its latest revaluation, ascending."""
        return np.flatnonzero(self.flags[: self.book.accounts])
