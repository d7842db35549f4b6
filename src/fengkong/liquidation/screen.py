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

**Floats screen, integers decide.** Every screened candidate is re-checked with the exact
integer models (:mod:`fengkong.liquidation.exact`) before anything is done to it; the screen
must only never miss one. The exact model rounds every term in the exchange's favour (UPNL
down, notional and MM up, each by at most one minor unit); a float64 evaluation errs by far
less than 1e-12 of the gross magnitude ``G = |wallet| + Σ (notional + |entry|)``, so a group
with ``equity − MM <= REL_BAND × G + UNIT_BAND × positions × unit`` (``REL_BAND`` = 1e-9,
``UNIT_BAND`` = 8 minor units) covers every exact candidate: that is the *fine* (float64)
check, which the figures ``equity``, ``maint``, ``ratio`` still use. A bracket chosen on either
side of a cap by float noise changes MM by at most ``|notional − cap| × ΔMMR`` plus cum's
rounding, both inside the band, because ``cum`` makes MM continuous across brackets.

**The screen: a float32 mirror and a slightly wider band.** The flags come from a *coarse*
check over the book's float32 copies of each position (``fsize``, ``fentry`` sign-folded so
that ``UPNL = size × p − entry`` for linear and inverse alike, ``fmargin``): per account and
settlement asset the cross *headroom*

    H = wallet − c|wallet| + Σ (UPNL − MM* − c (notional + |entry|) − UNIT_BAND × unit)

with ``c = COARSE_REL`` = 2.5e-7 and ``MM* = max_t (notional × MMR_t − cum_t)`` over every
bracket: never below the bracket formula at any bracket, in particular the one the float64
check picks (and equal to it for tables whose ``cum`` makes MM continuous and whose MMR rises;
branch-free, it is also faster than stopping at the bracket). Float32 storage moves a size, an
entry or a margin by at most 2^-24 of itself (round to nearest), so each coarse term is at most
2^-23 (notional + |entry|) above the float64 term and ``H`` is below the fine check's ``equity
− MM − band − REL_BAND |wallet|`` by at least ``(c − 2^-23 − REL_BAND) G`` > 0: **every group
the fine check flags has H <= 0** (coarse flags ⊇ fine flags ⊇ exact candidates; tested).
Isolated positions are checked the same way with their margin in place of the wallet, a
notional above ``limit × (1 − c)`` is always a flag, and a value float32 cannot hold to 2^-24
(magnitude outside 1e-30 .. 1e30) is copied as NaN, which is always a flag. The wider band
costs a few more accounts for the exact re-check (2.5e-7 × G: 0.0005 USDT on a 2,000 USDT
gross).

Per account the screener keeps ``head[s, a]`` (H; +inf for a group without cross positions)
and ``bits[a]``: bit ``i % 24`` for an instrument with an isolated or over-limit position in
trouble, bit ``24 + s`` for a cross group with ``H <= 0`` (assets from 6 share bit 30), bit 31
for an account changed since its last valuation (*dirty*, from the book's change log).
``flags[a]`` is ``bits[a] != 0`` as of its last valuation.

**Incremental one-instrument tick.** When one instrument's mark moves from ``p0`` to ``p1``
(:meth:`Screener.tick_instrument`), only its positions are visited (the book's packed
per-instrument ``legs``): a cross position adds ``term(p1) − term(p0)`` to its group's ``H``
(both from the same float32 values, so its bracket is exact at both prices), less ``SLACK`` ×
the magnitudes involved, which bounds the float64 rounding of the update (``H`` only ever errs
low: the cover holds); an isolated position and the limit are checked at ``p1``; the group and
instrument bits are set or cleared. An account is revalued whole (its block from the arena)
only when it is dirty or a bit must be cleared that other positions may share (``i % 24``,
or a shared group bit). One-way positions are moved in parallel (an account has at most one
per instrument); hedge legs, which share an account, on one thread after them.

Ticks: :meth:`Screener.tick_all` (every instrument's mark, every account, ``prange`` over
accounts), :meth:`Screener.tick_instrument` (one mark, incremental) and
:meth:`Screener.revalue` (given accounts, whole). Marks set directly on the book's
:class:`~fengkong.liquidation.instruments.InstrumentColumns` are caught up (one incremental
move per instrument) before the next operation. ``equity``, ``maint`` and ``ratio`` (fine
float64 figures) are computed when read; :meth:`Screener.figures` computes a few accounts'.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from fengkong.liquidation.book import PositionBook
from fengkong.liquidation.instruments import MissingMarkError

__all__ = [
    "COARSE_REL",
    "PARALLEL_MIN_ACCOUNTS",
    "REL_BAND",
    "SLACK",
    "UNIT_BAND",
    "Screener",
    "position_margin",
]

REL_BAND = 1e-9
UNIT_BAND = 8.0
COARSE_REL = 2.5e-7
SLACK = 1e-15
"""Per incremental update of ``H``: ``SLACK × (|H| + |terms| + notionals + |entry|)`` is
subtracted, above the float64 rounding of the update (a few 2^-53 of those magnitudes)."""
_U = np.uint64
"""Every array index in the kernels is cast to unsigned: numba then emits no negative-index
wraparound (a compare and a select) per access. Measured on the full-book screen: 30.0 ms ->
24.2 ms on one thread (1,000,000 accounts, 2.79M positions)."""
PARALLEL_MIN_ACCOUNTS = 50_000
"""Below this many accounts (or positions, for an incremental tick) a kernel runs on one
thread: a parallel region waits for every worker to be scheduled, which on shared cores can
cost more than the work (measured: ~8 ms for any parallel call while another process held one
of this machine's two cores)."""


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
    a = _U(a)
    assets = _U(wallet.shape[1])
    for s in range(assets):
        equity[a, s] = wallet[a, s]
        maint[a, s] = 0.0
        ratio[a, s] = 0.0
    flagged = False
    first = _U(start[a])
    for k in range(first, first + _U(count[a])):
        i = _U(inst[k])
        s = _U(settle[i])
        x = size[k] * price[i]
        upnl = sign[i] * (x - entry[k])
        notional = abs(x)
        t = _U(0)
        top = _U(last[i])
        while t < top and notional > caps[i, t]:
            t += _U(1)
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


# --- coarse check (float32 mirror, float64 arithmetic) ------------------------------------
# rows[i] = [p, settle, unit band, coarse limit, mmr[0..T-1], cum[0..T-1]]


@numba.njit(cache=True, inline="always")
def _term(size, entry, p, rows, i, tiers):
    """Coarse term ``x − entry − MM* − c (notional + |entry|) − unit band`` and notional of a
    sign-folded position at ``p``."""
    i = _U(i)
    x = size * p
    notional = abs(x)
    mm = notional * rows[i, _U(4)] - rows[i, _U(4 + tiers)]
    for t in range(1, tiers):  # branch-free: faster than stopping at the bracket
        mm = max(mm, notional * rows[i, _U(4 + t)] - rows[i, _U(4 + tiers + t)])
    return x - entry - mm - COARSE_REL * (notional + abs(entry)) - rows[i, _U(2)], notional


_INSTRUMENT_BITS = 24  # bits 0..23: isolated / over-limit trouble, instrument i -> i % 24
_GROUP_BIT = 24  # bits 24..30: cross group of asset s has H <= 0 (s >= 6 share bit 30)
_DIRTY = np.uint32(1 << 31)  # changed since its last valuation: revalue whole


@numba.njit(cache=True, inline="always")
def _bit(i):
    """The trouble bit of instrument ``i`` in an account's ``bits``."""
    return np.uint32(1) << np.uint32(i % _INSTRUMENT_BITS)


@numba.njit(cache=True, inline="always")
def _group_bit(s):
    return np.uint32(1) << np.uint32(_GROUP_BIT + min(s, 6))


@numba.njit(cache=True, inline="always")
def _coarse2(a, wallet, start, count, code, msize, mentry, mmargin, rows, tiers, head, bits):
    """Coarse state of account ``a`` (one or two settlement assets): ``head[s, a]`` (+inf
    for a group without cross positions) and ``bits[a]``; return its coarse flag."""
    a = _U(a)
    two = wallet.shape[1] == 2
    w0 = wallet[a, _U(0)]
    w1 = wallet[a, _U(1)] if two else 0.0
    h0 = w0 - COARSE_REL * abs(w0)
    h1 = w1 - COARSE_REL * abs(w1)
    n0 = 0.0
    n1 = 0.0
    over = False
    first = _U(start[a])
    for k in range(first, first + _U(count[a])):
        c = code[k]
        iso = c < 0
        i = _U(-c - 1 if iso else c)
        v, notional = _term(np.float64(msize[k]), np.float64(mentry[k]), rows[i, _U(0)], rows,
                            i, tiers)  # fmt: skip
        m = np.float64(mmargin[k])
        bad = (notional > rows[i, _U(3)]) | (iso & (not v + m - COARSE_REL * abs(m) > 0.0))
        over |= bad
        keep = 0.0 if iso else 1.0
        s1 = rows[i, _U(1)] * keep
        s0 = keep - s1
        h0 += v * s0
        n0 += s0
        h1 += v * s1
        n1 += s1
    trouble = np.uint32(0)
    if over:  # rare: find the instruments' bits
        for k in range(first, first + _U(count[a])):
            c = code[k]
            iso = c < 0
            i = _U(-c - 1 if iso else c)
            v, notional = _term(np.float64(msize[k]), np.float64(mentry[k]), rows[i, _U(0)],
                                rows, i, tiers)  # fmt: skip
            m = np.float64(mmargin[k])
            if (notional > rows[i, _U(3)]) | (iso & (not v + m - COARSE_REL * abs(m) > 0.0)):
                trouble |= _bit(i)
    h0 = h0 if n0 > 0.0 else np.inf
    head[_U(0), a] = h0
    if not h0 > 0.0:
        trouble |= _group_bit(0)
    if two:
        h1 = h1 if n1 > 0.0 else np.inf
        head[_U(1), a] = h1
        if not h1 > 0.0:
            trouble |= _group_bit(1)
    bits[a] = trouble
    return trouble != 0


@numba.njit(cache=True, inline="always")
def _coarse_n(a, wallet, start, count, code, msize, mentry, mmargin, rows, tiers, head, bits):
    """The same for any number of settlement assets (per-asset sums kept in ``head``)."""
    a = _U(a)
    assets = _U(wallet.shape[1])
    trouble = np.uint32(0)
    for s in range(assets):
        head[s, a] = np.inf
    first = _U(start[a])
    for k in range(first, first + _U(count[a])):
        c = code[k]
        iso = c < 0
        i = _U(-c - 1 if iso else c)
        v, notional = _term(np.float64(msize[k]), np.float64(mentry[k]), rows[i, _U(0)], rows,
                            i, tiers)  # fmt: skip
        bad = notional > rows[i, _U(3)]
        if iso:
            m = np.float64(mmargin[k])
            bad |= not m + v - COARSE_REL * abs(m) > 0.0
        else:
            s = _U(rows[i, _U(1)])
            if head[s, a] == np.inf:
                w = wallet[a, s]
                head[s, a] = w - COARSE_REL * abs(w)
            head[s, a] += v
        if bad:
            trouble |= _bit(i)
    for s in range(assets):
        if not head[s, a] > 0.0:
            trouble |= _group_bit(s)
    bits[a] = trouble
    return trouble != 0


@numba.njit(cache=True, parallel=True)
def _coarse_all(n, wallet, start, count, code, msize, mentry, mmargin, rows, tiers, head, bits,
                flags):  # fmt: skip
    if wallet.shape[1] <= 2:
        for a in prange(n):
            flags[a] = _coarse2(a, wallet, start, count, code, msize, mentry, mmargin, rows,
                                tiers, head, bits)  # fmt: skip
    else:
        for a in prange(n):
            flags[a] = _coarse_n(a, wallet, start, count, code, msize, mentry, mmargin, rows,
                                 tiers, head, bits)  # fmt: skip


@numba.njit(cache=True)
def _coarse_all_serial(n, wallet, start, count, code, msize, mentry, mmargin, rows, tiers, head,
                       bits, flags):  # fmt: skip
    if wallet.shape[1] <= 2:
        for a in prange(n):
            flags[a] = _coarse2(a, wallet, start, count, code, msize, mentry, mmargin, rows,
                                tiers, head, bits)  # fmt: skip
    else:
        for a in prange(n):
            flags[a] = _coarse_n(a, wallet, start, count, code, msize, mentry, mmargin, rows,
                                 tiers, head, bits)  # fmt: skip


@numba.njit(cache=True, parallel=True)
def _coarse_accounts(accounts, wallet, start, count, code, msize, mentry, mmargin, rows, tiers,
                     head, bits, flags):  # fmt: skip
    if wallet.shape[1] <= 2:
        for j in prange(accounts.shape[0]):
            a = accounts[j]
            flags[a] = _coarse2(a, wallet, start, count, code, msize, mentry, mmargin, rows,
                                tiers, head, bits)  # fmt: skip
    else:
        for j in prange(accounts.shape[0]):
            a = accounts[j]
            flags[a] = _coarse_n(a, wallet, start, count, code, msize, mentry, mmargin, rows,
                                 tiers, head, bits)  # fmt: skip


@numba.njit(cache=True)
def _coarse_accounts_serial(accounts, wallet, start, count, code, msize, mentry, mmargin, rows,
                            tiers, head, bits, flags):  # fmt: skip
    if wallet.shape[1] <= 2:
        for j in prange(accounts.shape[0]):
            a = accounts[j]
            flags[a] = _coarse2(a, wallet, start, count, code, msize, mentry, mmargin, rows,
                                tiers, head, bits)  # fmt: skip
    else:
        for j in prange(accounts.shape[0]):
            a = accounts[j]
            flags[a] = _coarse_n(a, wallet, start, count, code, msize, mentry, mmargin, rows,
                                 tiers, head, bits)  # fmt: skip


_CLEAR, _FLAGGED, _WHOLE, _HEDGE = 0, 1, 2, 3  # per-position outcome of a move


@numba.njit(cache=True, inline="always")
def _move_one(j, acct, fsize, fentry, fmargin, isolated, i, bit, s, p0, p1, rows, tiers, head,
              bits, flags, mark):  # fmt: skip
    """Position ``j`` of instrument ``i`` from ``p0`` to ``p1``: update its group's headroom
    or check it (isolated), the account's trouble bits and flag. Returns the outcome: the
    account is clear or flagged, or must be revalued whole (dirty; or a bit that this move
    cannot clear alone: the instrument's, shared by ``i % 24``, or a shared group bit)."""
    j = _U(j)
    a = _U(acct[j])
    i = _U(i)
    state = bits[a]
    if state & _DIRTY:
        return _WHOLE
    size32 = np.float64(fsize[j])
    entry32 = np.float64(fentry[j])
    v1, n1 = _term(size32, entry32, p1, rows, i, tiers)
    bad = n1 > rows[i, _U(3)]
    if isolated[j]:
        m = np.float64(fmargin[j])
        bad |= not m + v1 - COARSE_REL * abs(m) > 0.0
    else:
        v0, n0 = _term(size32, entry32, p0, rows, i, tiers)
        h = head[_U(s), a] + (v1 - v0)
        h -= SLACK * (abs(h) + abs(v1) + abs(v0) + n1 + n0 + abs(entry32))
        head[_U(s), a] = h
        group = _group_bit(s)
        if not h > 0.0:
            state |= group
        elif state & group:
            if s >= 6:
                return _WHOLE
            state &= ~group
    if bad:
        state |= bit
    elif state & bit:
        return _WHOLE
    bits[a] = state
    flagged = state != 0
    flags[a] = flagged
    mark[a] = flagged
    return _FLAGGED if flagged else _CLEAR


@numba.njit(cache=True, parallel=True)
def _move(n, acct, shared, fsize, fentry, fmargin, isolated, i, bit, s, p0, p1, rows, tiers,
          head, bits, flags, mark, out):  # fmt: skip
    """One instrument's mark ``p0 -> p1`` (see module docstring) over the positions that are
    their account's only one in the instrument, so no two iterations touch the same account.
    The others (both hedge legs open) are left (``_HEDGE``) for :func:`_move_serial`."""
    for j in prange(n):
        if not shared[j]:
            out[j] = _move_one(j, acct, fsize, fentry, fmargin, isolated, i, bit, s, p0, p1,
                               rows, tiers, head, bits, flags, mark)  # fmt: skip
        else:
            out[j] = _HEDGE


@numba.njit(cache=True)
def _move_serial(positions, acct, fsize, fentry, fmargin, isolated, i, bit, s, p0, p1, rows,
                 tiers, head, bits, flags, mark, out):  # fmt: skip
    """The same on one thread, for the given positions."""
    for k in range(positions.shape[0]):
        j = positions[k]
        out[j] = _move_one(j, acct, fsize, fentry, fmargin, isolated, i, bit, s, p0, p1, rows,
                           tiers, head, bits, flags, mark)  # fmt: skip


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
    """Screening state of one :class:`PositionBook`: per account a candidate ``flags`` byte
    (the fine check: a cross group or an isolated position inside the band), the coarse
    headroom ``head`` per account and settlement asset, and — computed when read — the fine
    float64 figures ``equity``, ``maint`` and ``ratio`` per account and settlement asset.

    Keeping it in step: the book's change log tells it which accounts changed (they are
    revalued, whole, the next time they are screened); marks set on the book's
    :class:`~fengkong.liquidation.instruments.InstrumentColumns` directly are caught up
    (an incremental move per changed instrument) before the next operation.
    """

    def __init__(self, book: PositionBook) -> None:
        self.book = book
        self.flags = np.zeros(0, dtype=np.bool_)
        self.head = np.zeros((1, 0))  # per settlement asset, per account
        self.bits = np.zeros(0, dtype=np.uint32)
        self._mark = np.zeros(0, dtype=np.bool_)
        self._equity = np.zeros((0, 1))
        self._maint = np.zeros((0, 1))
        self._ratio = np.zeros((0, 1))
        self._figures_key: tuple | None = None
        self._known = 0  # accounts seen; those beyond are dirty
        self._cursor = -1  # position in the book's change log (absolute); -1: never synced
        self._valued = np.zeros(0)  # per instrument, the price ``head`` and ``flags`` are at
        self._need = np.zeros(0, dtype=np.uint8)
        self._rows_key: tuple | None = None
        self._rows = np.zeros((0, 4))

    # --- figures (fine float64, on demand) --------------------------------------------------

    @property
    def equity(self) -> np.ndarray:
        """Cross equity per account and settlement asset at the current marks (fine)."""
        self._figures()
        return self._equity

    @property
    def maint(self) -> np.ndarray:
        """Cross maintenance margin per account and settlement asset (fine)."""
        self._figures()
        return self._maint

    @property
    def ratio(self) -> np.ndarray:
        """Cross margin ratio ``MM / equity`` per account and settlement asset (fine)."""
        self._figures()
        return self._ratio

    def _figures(self) -> None:
        book = self.book
        columns = book.instruments
        key = (book.layout, book.changes_base + len(book.changes), book.accounts,
               columns.price[: len(columns)].tobytes())  # fmt: skip
        if key == self._figures_key:
            return
        self._fit()
        n = book.accounts
        scratch = np.zeros(max(n, 1), dtype=np.bool_)
        kernel = _tick_all if n >= PARALLEL_MIN_ACCOUNTS else _tick_all_serial
        kernel(n, *self._fine_arrays(scratch))
        self._figures_key = key

    def figures(self, accounts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(equity, maint, ratio)`` rows of ``accounts`` at the current marks, computed now
        (fine float64; cheaper than reading the whole-book properties)."""
        accounts = np.asarray(accounts, dtype=np.int32)
        self._fit()
        scratch = np.zeros(max(self.book.accounts, 1), dtype=np.bool_)
        _tick_accounts_serial(accounts, *self._fine_arrays(scratch))
        return self._equity[accounts], self._maint[accounts], self._ratio[accounts]

    # --- state upkeep -----------------------------------------------------------------------

    def _fit(self) -> None:
        book = self.book
        n, assets = book.accounts, book.wallet.shape[1]
        if self.flags.shape[0] < n or self.head.shape[0] != assets:
            rows = max(n, 2 * self.flags.shape[0])
            head = np.full((assets, rows), np.inf)
            width = min(self.head.shape[0], assets)
            head[:width, : self.head.shape[1]] = self.head[:width]
            self.head = head
            for name in ("_equity", "_maint", "_ratio"):
                grown = np.zeros((rows, assets))
                old = getattr(self, name)
                width = min(old.shape[1], assets)
                grown[: old.shape[0], :width] = old[:, :width]
                setattr(self, name, grown)
            for name, dtype in (("flags", np.bool_), ("_mark", np.bool_), ("bits", np.uint32)):
                grown = np.zeros(rows, dtype=dtype)
                old = getattr(self, name)
                grown[: old.shape[0]] = old
                setattr(self, name, grown)
        if n > self._known:
            self.bits[self._known : n] |= _DIRTY
            self._known = n
        instruments = len(book.instruments)
        if self._valued.shape[0] < instruments:
            valued = np.full(instruments, np.nan)
            valued[: self._valued.shape[0]] = self._valued
            self._valued = valued

    def _sync(self, marks: bool = True) -> None:
        """Catch up with the book: new and changed accounts become dirty, and (``marks``)
        instruments whose mark was set on the book since their last move are moved."""
        book = self.book
        self._fit()
        end = book.changes_base + len(book.changes)
        if self._cursor < book.changes_base:
            self.bits[: book.accounts] |= _DIRTY
        elif self._cursor < end:
            changed = np.unique(
                np.array(book.changes[self._cursor - book.changes_base :], dtype=np.int64)
            )
            self.bits[changed] |= _DIRTY
        self._cursor = end
        if marks:
            columns = book.instruments
            price = columns.price[: len(columns)]
            moved = np.flatnonzero(np.isfinite(price) & (price != self._valued[: len(columns)]))
            for i in moved.tolist():
                if np.isnan(self._valued[i]):
                    self._valued[i] = price[i]  # never valued: no clean holder to move
                else:
                    self._move_instrument(i, strict=False)

    def _rows_view(self) -> tuple[np.ndarray, int]:
        """The coarse kernels' per-instrument rows (see ``_term``), current prices."""
        columns = self.book.instruments
        n = len(columns)
        key = (n, columns.caps.shape[1], len(columns.assets))
        if key != self._rows_key:
            _, _, settle, _, mmr, cum, _, limit, asset_band = columns.kernel_view(
                REL_BAND, UNIT_BAND
            )
            tiers = mmr.shape[1]
            rows = np.zeros((max(n, 1), 4 + 2 * tiers))
            rows[:n, 1] = settle
            rows[:n, 2] = asset_band[settle]
            rows[:n, 3] = limit * (1.0 - COARSE_REL)
            rows[:n, 4 : 4 + tiers] = mmr
            rows[:n, 4 + tiers : 4 + 2 * tiers] = cum
            self._rows, self._rows_key = rows, key
        self._rows[:n, 0] = columns.price[:n]
        return self._rows, (self._rows.shape[1] - 4) // 2

    def _fine_arrays(self, flags: np.ndarray) -> tuple:
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
            self._equity,
            self._maint,
            self._ratio,
            flags,
        )

    def _coarse_arrays(self) -> tuple:
        book = self.book
        rows, tiers = self._rows_view()
        return (book.wallet, book.start, book.count, book.code, book.fsize, book.fentry,
                book.fmargin, rows, tiers, self.head, self.bits)  # fmt: skip

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

    def _markable(self, accounts: np.ndarray) -> np.ndarray:
        """The ``accounts`` whose every held instrument has a mark (the others stay dirty)."""
        book = self.book
        columns = book.instruments
        finite = np.isfinite(columns.marks[: len(columns)])
        if finite.all() or accounts.size == 0:
            return accounts
        counts = book.count[accounts].astype(np.int64)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        slots = np.repeat(book.start[accounts], counts) + offsets
        owner = np.repeat(np.arange(accounts.size), counts)
        missing = np.bincount(owner, ~finite[book.inst[slots]], accounts.size) > 0
        self.bits[accounts[missing]] |= _DIRTY
        return accounts[~missing]

    def _value(self, accounts: np.ndarray, strict: bool = True) -> np.ndarray:
        """Revalue whole accounts (any order, repeats allowed); return those flagged,
        ascending."""
        accounts = np.unique(np.asarray(accounts, dtype=np.int32))
        if not strict:
            accounts = self._markable(accounts)
        if accounts.size == 0:
            return np.zeros(0, dtype=np.int64)
        parallel = accounts.size >= PARALLEL_MIN_ACCOUNTS
        kernel = _coarse_accounts if parallel else _coarse_accounts_serial
        kernel(accounts, *self._coarse_arrays(), self.flags)
        return accounts[self.flags[accounts]].astype(np.int64)

    def _move_instrument(self, i: int, strict: bool) -> np.ndarray:
        """Move instrument ``i`` from its valued price to its current one (incremental)."""
        book = self.book
        columns = book.instruments
        p0, p1 = float(self._valued[i]), float(columns.price[i])
        legs = book.legs(i)
        n = legs.n
        self._valued[i] = p1
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        if self._need.shape[0] < n:
            self._need = np.zeros(max(n, 2 * self._need.shape[0]), dtype=np.uint8)
        out = self._need
        mark = self._mark
        mark[:] = False
        rows, tiers = self._rows_view()
        bit = np.uint32(1 << (i % _INSTRUMENT_BITS))
        common = (legs.acct, legs.fsize, legs.fentry, legs.fmargin, legs.isolated, i, bit,
                  int(columns.settle[i]), p0, p1, rows, tiers, self.head, self.bits, self.flags,
                  mark, out)  # fmt: skip
        if n >= PARALLEL_MIN_ACCOUNTS:
            _move(n, legs.acct, legs.shared, *common[1:])
            hedge = np.flatnonzero(out[:n] == _HEDGE)
        else:
            hedge = np.arange(n)
        _move_serial(hedge, *common)
        whole = np.flatnonzero(out[:n] == _WHOLE)
        if whole.size:
            accounts = legs.acct[whole]
            self._value(accounts, strict)
            mark[accounts] = self.flags[accounts]
        return np.flatnonzero(mark[: book.accounts])

    # --- ticks ------------------------------------------------------------------------------

    def tick_all(self, marks: np.ndarray | None = None) -> np.ndarray:
        """Revalue every account (``marks``: float per instrument, or the book's current
        marks); return the flagged accounts' indices, ascending."""
        book = self.book
        if marks is not None:
            book.instruments.set_marks(marks)
        self._check_marks()
        self._sync(marks=False)
        n = book.accounts
        kernel = _coarse_all if n >= PARALLEL_MIN_ACCOUNTS else _coarse_all_serial
        kernel(n, *self._coarse_arrays(), self.flags)
        columns = book.instruments
        price = columns.price[: len(columns)]
        self._valued = np.where(np.isfinite(price), price, self._valued[: len(columns)])
        return np.flatnonzero(self.flags[:n])

    def tick_instrument(self, symbol: str, price: int) -> np.ndarray:
        """New mark of ``symbol`` (integer price units): revalue only its holders
        (incrementally); return those flagged, ascending. Their other instruments' marks must
        be set."""
        columns = self.book.instruments
        i = columns.index[symbol]
        self._sync()
        columns.set_mark(symbol, price)
        self._check_marks(self.book.holder_accounts(i))
        if np.isnan(self._valued[i]):
            self._valued[i] = columns.price[i]
            return self._value(self.book.holder_accounts(i))
        return self._move_instrument(i, strict=True)

    def revalue(self, accounts: np.ndarray) -> np.ndarray:
        """Revalue the given accounts (distinct indices, e.g. after their positions changed)
        at the current marks; return those flagged, ascending."""
        accounts = np.asarray(accounts)
        if accounts.size == 0:
            return accounts.astype(np.int64)
        self._sync()
        self._check_marks(accounts)
        return self._value(accounts)

    def candidates(self) -> np.ndarray:
        """Every account flagged by its latest revaluation, ascending."""
        return np.flatnonzero(self.flags[: self.book.accounts])
