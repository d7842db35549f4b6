"""The columnar position book: every open derivative position as numpy arrays, for screening.

A float64 mirror of the ledger's exact state, **for screening only**: candidates found on it
are re-checked with the exact integer models (:mod:`fengkong.liquidation.exact`) before
anything is done to them. Kept in step with the ledger by :meth:`PositionBook.sync_account`
after every event that touches an account (fill, transfer, funding, margin transfer).

Layout (an arena of per-account blocks, the layout the revaluation kernels want):

* per account ``a``: ``wallet[a, s]`` the cross wallet (free + locked) in settlement asset
  ``s``; its positions live in the arena slots ``start[a] .. start[a] + count[a]`` (capacity
  ``capacity[a]``), so the full-book kernel reads each account's positions contiguously;
* per arena slot: ``inst`` (instrument index), ``leg`` (0 one-way, 1 hedge long, 2 hedge
  short), ``size``, ``entry`` (natural units, see :mod:`fengkong.liquidation.instruments`),
  ``margin`` (isolated margin, settlement units) and ``isolated``;
* per instrument: ``holder_accounts(i)``, the accounts holding it (each once, even with two
  hedge legs); slot ``hpos`` is the account's index in that list;
* per instrument: ``legs(i)``, a packed copy of every position (leg) in it — account, leg,
  size, entry, margin, isolated — the layout of the incremental one-instrument tick
  (:meth:`~fengkong.liquidation.screen.Screener.tick_instrument`); slot ``ipos`` is the
  position's index in that list.

Screeners keep derived state (a float32 mirror, per-account aggregates) and learn what changed
from the book's change log: ``changes`` lists the accounts touched by :meth:`set_wallet` /
:meth:`apply_position` / :meth:`sync_account` (``changes_base`` entries were dropped from its
front), and ``layout`` counts re-layouts of the arena (:meth:`compact`, bulk loads).

Updates are O(positions of the account) — amortized O(1): a full block moves to the arena's
end with twice the capacity (the old block becomes a hole, reclaimed by :meth:`compact`, which
runs by itself when holes outnumber live slots); a removed slot is replaced by the block's
last one; an instrument's holder list removes by swapping its last entry in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fengkong.ledger.ledger import Ledger
from fengkong.ledger.state import SYSTEM_PREFIX, Account
from fengkong.liquidation.instruments import SCREENED_KINDS, BracketRow, InstrumentColumns
from fengkong.margin.tiers import TierTable
from fengkong.model.enums import MarginMode, PositionSide
from fengkong.model.instruments import Instrument

__all__ = ["F32_HIGH", "F32_LOW", "LEG_CODES", "InstrumentLegs", "PositionBook", "mirror32"]

LEG_CODES = {PositionSide.BOTH: 0, PositionSide.LONG: 1, PositionSide.SHORT: 2}
_INITIAL_CAPACITY = 4
_FIELDS = (
    "inst", "leg", "size", "entry", "margin", "isolated", "hpos", "ipos",
    "code", "fsize", "fentry", "fmargin",
)  # fmt: skip
_LEG_FIELDS = ("acct", "leg", "isolated", "fsize", "fentry", "fmargin", "shared")
_MAX_CHANGES = 1 << 20
F32_LOW, F32_HIGH = 1e-30, 1e30
"""float32 holds a value in this magnitude range to 2^-24 of itself (round to nearest)."""


def mirror32(values: np.ndarray | float) -> np.ndarray:
    """float32 copy of ``values``, NaN where float32 cannot hold a value to 2^-24 of itself
    (magnitude outside ``F32_LOW .. F32_HIGH``, or not finite)."""
    values = np.asarray(values, dtype=np.float64)
    out = values.astype(np.float32)
    size = np.abs(values)
    out[(size != 0.0) & ~((size > F32_LOW) & (size < F32_HIGH))] = np.nan
    return out


def _grown(array: np.ndarray, n: int) -> np.ndarray:
    if n <= array.shape[0]:
        return array
    grown = np.zeros((max(n, 2 * array.shape[0]), *array.shape[1:]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


class InstrumentLegs:
    """Every position (leg) of one instrument, packed: ``acct``, ``leg``, ``isolated``, the
    float32 screening copies ``fsize``, ``fentry``, ``fmargin`` (as in the arena) and
    ``shared`` (the account holds another leg of this instrument: both hedge legs open).
    Arrays are over-allocated; the first ``n`` entries are live. Removal swaps the last entry
    in."""

    __slots__ = ("acct", "fentry", "fmargin", "fsize", "isolated", "leg", "n", "shared")

    def __init__(self, capacity: int = 0) -> None:
        capacity = max(capacity, 4)
        self.acct = np.zeros(capacity, dtype=np.int32)
        self.leg = np.zeros(capacity, dtype=np.int8)
        self.isolated = np.zeros(capacity, dtype=np.bool_)
        self.fsize = np.zeros(capacity, dtype=np.float32)
        self.fentry = np.zeros(capacity, dtype=np.float32)
        self.fmargin = np.zeros(capacity, dtype=np.float32)
        self.shared = np.zeros(capacity, dtype=np.bool_)
        self.n = 0

    def append(self, account: int, leg: int) -> int:
        n = self.n
        if n == self.acct.shape[0]:
            for name in _LEG_FIELDS:
                setattr(self, name, _grown(getattr(self, name), n + 1))
        self.acct[n], self.leg[n] = account, leg
        self.fsize[n] = self.fentry[n] = self.fmargin[n] = 0.0
        self.isolated[n] = self.shared[n] = False
        self.n = n + 1
        return n

    def remove(self, index: int) -> tuple[int, int] | None:
        """Drop entry ``index``; return ``(account, leg)`` of the entry moved into it."""
        last = self.n - 1
        self.n = last
        if index == last:
            return None
        for name in _LEG_FIELDS:
            column = getattr(self, name)
            column[index] = column[last]
        return int(self.acct[index]), int(self.leg[index])


class PositionBook:
    """Columnar mirror of the ledger's derivative positions (see module docstring)."""

    def __init__(self, instruments: InstrumentColumns | None = None) -> None:
        self.instruments = instruments if instruments is not None else InstrumentColumns()
        self.account_ids: list[str] = []
        self.account_index: dict[str, int] = {}
        self.wallet = np.zeros((0, max(1, len(self.instruments.assets))))
        self.start = np.zeros(0, dtype=np.int64)
        self.count = np.zeros(0, dtype=np.int32)
        self.capacity = np.zeros(0, dtype=np.int32)
        self.inst = np.zeros(0, dtype=np.int32)
        self.leg = np.zeros(0, dtype=np.int8)
        self.size = np.zeros(0)
        self.entry = np.zeros(0)
        self.margin = np.zeros(0)
        self.isolated = np.zeros(0, dtype=np.bool_)
        self.hpos = np.zeros(0, dtype=np.int32)
        self.ipos = np.zeros(0, dtype=np.int32)
        # float32 screening copies (fengkong.liquidation.screen): sign-folded size and entry
        # (``UPNL = size × p − entry`` for linear and inverse alike), isolated margin, and
        # ``code`` = instrument index, or ``−index − 1`` for an isolated position
        self.code = np.zeros(0, dtype=np.int16)
        self.fsize = np.zeros(0, dtype=np.float32)
        self.fentry = np.zeros(0, dtype=np.float32)
        self.fmargin = np.zeros(0, dtype=np.float32)
        self.top = 0  # arena slots in use, holes included
        self.holes = 0
        self._holders: list[np.ndarray] = [
            np.zeros(0, dtype=np.int32) for _ in range(len(self.instruments))
        ]
        self._holder_count: list[int] = [0] * len(self.instruments)
        self._legs: list[InstrumentLegs] = [InstrumentLegs() for _ in range(len(self.instruments))]
        self.changes: list[int] = []  # accounts touched, in order (see module docstring)
        self.changes_base = 0  # entries dropped from the front of ``changes``
        self.layout = 0  # bumped when arena slots move wholesale (compact, bulk load)

    # --- sizes and views ------------------------------------------------------------------

    @property
    def accounts(self) -> int:
        return len(self.account_ids)

    @property
    def positions(self) -> int:
        return int(self.count[: self.accounts].sum())

    def holder_accounts(self, i: int) -> np.ndarray:
        """Indices of the accounts holding instrument ``i`` (a view; do not keep it)."""
        return self._holders[i][: self._holder_count[i]]

    def legs(self, i: int) -> InstrumentLegs:
        """Every position of instrument ``i``, packed (read only; the first ``n`` entries)."""
        return self._legs[i]

    def slots_of(self, account: int) -> range:
        begin = int(self.start[account])
        return range(begin, begin + int(self.count[account]))

    # --- registration ---------------------------------------------------------------------

    def add_instrument(
        self, instrument: Instrument, settle_scale: int, brackets: Sequence[BracketRow]
    ) -> int:
        i = self.instruments.add(instrument, settle_scale, brackets)
        if i >= 2**15 - 1 and self.code.dtype == np.int16:
            self.code = self.code.astype(np.int32)
        self._fit_assets()
        self._holders.append(np.zeros(0, dtype=np.int32))
        self._holder_count.append(0)
        self._legs.append(InstrumentLegs())
        return i

    def _fit_assets(self) -> None:
        width = len(self.instruments.assets)
        if self.wallet.shape[1] < width:
            wider = np.zeros((self.wallet.shape[0], width))
            wider[:, : self.wallet.shape[1]] = self.wallet
            self.wallet = wider

    def account(self, account_id: str) -> int:
        """Index of ``account_id``, registering it (empty) on first sight."""
        found = self.account_index.get(account_id)
        if found is not None:
            return found
        a = len(self.account_ids)
        self.account_index[account_id] = a
        self.account_ids.append(account_id)
        self.wallet = _grown(self.wallet, a + 1)
        self.start = _grown(self.start, a + 1)
        self.count = _grown(self.count, a + 1)
        self.capacity = _grown(self.capacity, a + 1)
        self.wallet[a] = 0.0
        self.count[a] = 0
        self.capacity[a] = 0
        self.start[a] = self.top
        return a

    # --- incremental updates ----------------------------------------------------------------

    def _touched(self, a: int) -> None:
        self.changes.append(a)
        if len(self.changes) > _MAX_CHANGES:  # readers behind this lose the detail: all dirty
            self.changes_base += len(self.changes)
            self.changes = []

    def set_wallet(self, account_id: str, asset: str, units: int) -> None:
        """Cross wallet (free + locked, integer units) of ``account_id`` in ``asset``."""
        s = self.instruments.asset_index.get(asset)
        if s is None:
            return  # no screened instrument settles in it: it cannot back a position here
        a = self.account(account_id)
        self.wallet[a, s] = self.instruments.amount(s, units)
        self._touched(a)

    def apply_position(
        self,
        account_id: str,
        symbol: str,
        qty: int,
        entry_value: int,
        *,
        side: PositionSide = PositionSide.BOTH,
        margin_mode: MarginMode = MarginMode.CROSS,
        isolated_margin: int = 0,
    ) -> None:
        """Set the position ``(account, symbol, side)`` to the ledger's exact state.

        ``qty`` signed contracts, ``entry_value`` the ledger's exact signed entry value,
        ``isolated_margin`` in settlement units. ``qty == 0`` removes the position.
        """
        i = self.instruments.index[symbol]
        a = self.account(account_id)
        self._touched(a)
        leg = LEG_CODES[side]
        found = self._find(a, i, leg)
        if qty == 0:
            if found >= 0:
                self._remove(a, found)
            return
        if found < 0:
            found = self._append(a, i, leg)
        size = self.instruments.size(i, qty)
        entry = self.instruments.value(i, entry_value)
        isolated = margin_mode is MarginMode.ISOLATED
        s = int(self.instruments.settle[i])
        margin = self.instruments.amount(s, isolated_margin) if isolated else 0.0
        self.size[found], self.entry[found] = size, entry
        self.isolated[found], self.margin[found] = isolated, margin
        sign = self.instruments.sign[i]
        fsize, fentry, fmargin = mirror32([sign * size, sign * entry, margin])
        self.fsize[found], self.fentry[found], self.fmargin[found] = fsize, fentry, fmargin
        self.code[found] = -i - 1 if isolated else i
        legs, j = self._legs[i], int(self.ipos[found])
        legs.fsize[j], legs.fentry[j], legs.fmargin[j] = fsize, fentry, fmargin
        legs.isolated[j] = isolated

    def sync_account(self, ledger: Ledger, account_id: str) -> None:
        """Bring one account in step with the ledger: wallets and every screened position."""
        account = ledger.accounts[account_id]
        a = self.account(account_id)
        self._touched(a)
        for asset, balance in account.balances.items():
            self.set_wallet(account_id, asset, balance.total)
        live = set()
        for position in account.positions.values():
            if position.symbol not in self.instruments.index:
                continue
            live.add((self.instruments.index[position.symbol], LEG_CODES[position.side]))
            self.apply_position(
                account_id,
                position.symbol,
                position.qty,
                position.entry_value,
                side=position.side,
                margin_mode=position.margin_mode,
                isolated_margin=position.isolated_margin,
            )
        for slot in reversed(self.slots_of(a)):
            if (int(self.inst[slot]), int(self.leg[slot])) not in live:
                self._remove(a, slot)

    # --- arena mechanics --------------------------------------------------------------------

    def _find(self, a: int, i: int, leg: int) -> int:
        begin = int(self.start[a])
        end = begin + int(self.count[a])
        hits = np.flatnonzero((self.inst[begin:end] == i) & (self.leg[begin:end] == leg))
        return begin + int(hits[0]) if hits.size else -1

    def _reserve(self, slots: int) -> None:
        if self.top + slots <= self.inst.shape[0]:
            return
        if self.holes > self.top - self.holes:
            self.compact()
            if self.top + slots <= self.inst.shape[0]:
                return
        for name in _FIELDS:
            setattr(self, name, _grown(getattr(self, name), self.top + slots))

    def _append(self, a: int, i: int, leg: int) -> int:
        n = int(self.count[a])
        if n == self.capacity[a]:
            capacity = max(_INITIAL_CAPACITY, 2 * n)
            self._reserve(capacity)
            begin, new = int(self.start[a]), self.top
            for name in _FIELDS:
                column = getattr(self, name)
                column[new : new + n] = column[begin : begin + n]
            self.holes += int(self.capacity[a])
            self.start[a], self.capacity[a] = new, capacity
            self.top += capacity
        slot = int(self.start[a]) + n
        self.count[a] = n + 1
        self.inst[slot], self.leg[slot] = i, leg
        sibling = self._sibling(a, i, slot)
        self.hpos[slot] = self.hpos[sibling] if sibling >= 0 else self._add_holder(i, a)
        legs = self._legs[i]
        self.ipos[slot] = legs.append(a, leg)
        if sibling >= 0:
            legs.shared[self.ipos[slot]] = legs.shared[self.ipos[sibling]] = True
        return slot

    def _sibling(self, a: int, i: int, slot: int) -> int:
        """Another slot of account ``a`` in instrument ``i`` (the other hedge leg), or -1."""
        for other in self.slots_of(a):
            if other != slot and self.inst[other] == i:
                return other
        return -1

    def _remove(self, a: int, slot: int) -> None:
        i = int(self.inst[slot])
        sibling = self._sibling(a, i, slot)
        if sibling < 0:
            self._drop_holder(i, int(self.hpos[slot]))
        j = int(self.ipos[slot])
        legs = self._legs[i]
        moved = legs.remove(j)
        if moved is not None:
            self.ipos[self._find(moved[0], i, moved[1])] = j
        if sibling >= 0:
            others = [s for s in self.slots_of(a) if s != slot and self.inst[s] == i]
            legs.shared[self.ipos[sibling]] = len(others) > 1
        last = int(self.start[a]) + int(self.count[a]) - 1
        if slot != last:
            for name in _FIELDS:
                column = getattr(self, name)
                column[slot] = column[last]
        self.count[a] -= 1

    def _add_holder(self, i: int, a: int) -> int:
        n = self._holder_count[i]
        self._holders[i] = _grown(self._holders[i], n + 1)
        self._holders[i][n] = a
        self._holder_count[i] = n + 1
        return n

    def _drop_holder(self, i: int, index: int) -> None:
        holders = self._holders[i]
        last = self._holder_count[i] - 1
        if index != last:
            moved = int(holders[last])
            holders[index] = moved
            for slot in self.slots_of(moved):
                if self.inst[slot] == i:
                    self.hpos[slot] = index
        self._holder_count[i] = last

    def compact(self) -> None:
        """Pack the account blocks end to end (same capacities), dropping the holes."""
        n = self.accounts
        capacity = self.capacity[:n].astype(np.int64)
        count = self.count[:n].astype(np.int64)
        new_start = np.concatenate([[0], np.cumsum(capacity)[:-1]]) if n else capacity
        total = int(count.sum())
        offsets = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
        old = np.repeat(self.start[:n], count) + offsets
        new = np.repeat(new_start, count) + offsets
        size = int(capacity.sum())
        for name in _FIELDS:
            column = getattr(self, name)
            packed = np.zeros(max(size, 1), dtype=column.dtype)
            packed[new] = column[old]
            setattr(self, name, packed)
        self.start[:n] = new_start
        self.top, self.holes = size, 0
        self.layout += 1

    # --- bulk construction ------------------------------------------------------------------

    @classmethod
    def from_ledger(cls, ledger: Ledger, tables: Mapping[str, TierTable]) -> PositionBook:
        """A book of every user account of ``ledger`` (system accounts are never screened).

        ``tables`` holds the tier table of every listed linear or inverse perpetual or
        future; a missing one is an error naming the symbols (fail closed).
        """
        screened = sorted(s for s, x in ledger.instruments.items() if x.kind in SCREENED_KINDS)
        missing = [s for s in screened if s not in tables]
        if missing:
            raise KeyError(f"no bracket table for {', '.join(missing)}")
        book = cls()
        for symbol in screened:
            instrument = ledger.instruments[symbol]
            book.add_instrument(
                instrument, ledger.assets[instrument.settle].scale, tables[symbol].tiers
            )
        users = [a for a in ledger.accounts.values() if not a.id.startswith(SYSTEM_PREFIX)]
        book.load(users)
        return book

    def load(self, accounts: Sequence[Account]) -> None:
        """Bulk-load ledger accounts into an empty book (vectorized arena and holder build)."""
        if self.accounts:
            raise ValueError("load() fills an empty book; use sync_account() to update")
        columns = self.instruments
        rows: list[tuple[int, int, int, float, float, float, bool]] = []
        for account in accounts:
            a = self.account(account.id)
            for asset, balance in account.balances.items():
                s = columns.asset_index.get(asset)
                if s is not None:
                    self.wallet[a, s] = columns.amount(s, balance.total)
            for p in account.positions.values():
                i = columns.index.get(p.symbol)
                if i is None or p.qty == 0:
                    continue
                isolated = p.margin_mode is MarginMode.ISOLATED
                margin = columns.amount(int(columns.settle[i]), p.isolated_margin)
                rows.append(
                    (
                        a,
                        i,
                        LEG_CODES[p.side],
                        columns.size(i, p.qty),
                        columns.value(i, p.entry_value),
                        margin if isolated else 0.0,
                        isolated,
                    )
                )
        if rows:
            acct, inst, leg, size, entry, margin, isolated = (
                np.array(c) for c in zip(*rows, strict=True)
            )
        else:
            acct = inst = leg = np.zeros(0, dtype=np.int64)
            size = entry = margin = np.zeros(0)
            isolated = np.zeros(0, dtype=np.bool_)
        self.load_arrays(acct, inst, leg, size, entry, margin, isolated)

    def load_arrays(
        self,
        account: np.ndarray,
        inst: np.ndarray,
        leg: np.ndarray,
        size: np.ndarray,
        entry: np.ndarray,
        margin: np.ndarray,
        isolated: np.ndarray,
    ) -> None:
        """Place positions (already in natural units) of registered accounts into an empty
        arena: blocks in account order, capacity the next power of two >= max(count, 4)."""
        n = self.accounts
        if self.top:
            raise ValueError("load_arrays() fills an empty arena")
        order = np.argsort(account, kind="stable")
        account = np.asarray(account, dtype=np.int64)[order]
        count = np.bincount(account, minlength=n).astype(np.int64)
        capacity = np.maximum(
            _INITIAL_CAPACITY, 2 ** np.ceil(np.log2(np.maximum(count, 1))).astype(np.int64)
        )
        start = np.concatenate([[0], np.cumsum(capacity)[:-1]]) if n else capacity
        offsets = np.arange(account.size) - np.repeat(np.cumsum(count) - count, count)
        slot = start[account] + offsets
        total = int(capacity.sum())
        arena = {
            "inst": (inst, np.int32),
            "leg": (leg, np.int8),
            "size": (size, np.float64),
            "entry": (entry, np.float64),
            "margin": (margin, np.float64),
            "isolated": (isolated, np.bool_),
        }
        for name, (values, dtype) in arena.items():
            column = np.zeros(max(total, 1), dtype=dtype)
            column[slot] = np.asarray(values)[order]
            setattr(self, name, column)
        code_type = np.int16 if len(self.instruments) < 2**15 - 1 else np.int32
        sign = self.instruments.sign[self.inst[slot]]
        live = self.isolated[slot]
        self.code = np.zeros(max(total, 1), dtype=code_type)
        self.code[slot] = np.where(live, -self.inst[slot] - 1, self.inst[slot])
        for name, values in (("fsize", sign * self.size[slot]), ("fentry", sign * self.entry[slot]),
                             ("fmargin", self.margin[slot])):  # fmt: skip
            column = np.zeros(max(total, 1), dtype=np.float32)
            column[slot] = mirror32(values)
            setattr(self, name, column)
        self.start[:n], self.count[:n], self.capacity[:n] = start, count, capacity
        self.top, self.holes = total, 0
        self.hpos = np.zeros(max(total, 1), dtype=np.int32)
        # holders: one entry per (account, instrument), in account order within an instrument
        n_inst = len(self.instruments)
        sorted_inst = self.inst[slot].astype(np.int64)
        pairs, inverse = np.unique(account * n_inst + sorted_inst, return_inverse=True)
        pair_inst = pairs % n_inst
        pair_account = pairs // n_inst
        by_inst = np.argsort(pair_inst, kind="stable")
        per_inst = np.bincount(pair_inst, minlength=n_inst)
        rank = np.empty(pairs.size, dtype=np.int64)
        rank[by_inst] = np.arange(pairs.size) - np.repeat(np.cumsum(per_inst) - per_inst, per_inst)
        self.hpos[slot] = rank[inverse]
        bounds = np.concatenate([[0], np.cumsum(per_inst)])
        ordered_accounts = pair_account[by_inst].astype(np.int32)
        self._holders = [ordered_accounts[bounds[i] : bounds[i + 1]].copy() for i in range(n_inst)]
        self._holder_count = [int(c) for c in per_inst]
        # legs: every position of an instrument, in account order
        by_leg = np.argsort(sorted_inst, kind="stable")  # slots are in account order
        leg_slots = slot[by_leg]
        per_leg = np.bincount(sorted_inst, minlength=n_inst)
        leg_bounds = np.concatenate([[0], np.cumsum(per_leg)])
        self.ipos = np.zeros(max(total, 1), dtype=np.int32)
        self.ipos[leg_slots] = np.arange(leg_slots.size) - np.repeat(leg_bounds[:-1], per_leg)
        leg_accounts = account[by_leg].astype(np.int32)
        leg_shared = (np.bincount(inverse, minlength=pairs.size) > 1)[inverse][by_leg]
        self._legs = []
        for i in range(n_inst):
            part = leg_slots[leg_bounds[i] : leg_bounds[i + 1]]
            legs = InstrumentLegs(part.size)
            legs.n = part.size
            legs.acct[: part.size] = leg_accounts[leg_bounds[i] : leg_bounds[i + 1]]
            for name in _LEG_FIELDS[1:-1]:
                getattr(legs, name)[: part.size] = getattr(self, name)[part]
            legs.shared[: part.size] = leg_shared[leg_bounds[i] : leg_bounds[i + 1]]
            self._legs.append(legs)
        self.layout += 1
        self.changes_base += len(self.changes) + 1  # a bulk load: every account is new
        self.changes = []
