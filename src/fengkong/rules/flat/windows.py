"""Count and sum stores whose per-key state is a row of :mod:`fengkong.rules.flat.tally`'s
arrays: :class:`~fengkong.rules.windows.CountWindow` and
:class:`~fengkong.rules.windows.SumWindow` with the same keys, update order, sweeps, reads and
canonical state (a differential test compares them event by event).

A key's state in the key table is its row number in a :class:`FlatPool`, which a pack's flat
stores share. Rows of popped keys are emptied and reused; the head grows by doubling, the slab
when a kernel asks for room. These methods call the
kernels one operation at a time (the reference path, snapshots, tests); a pack's fused step
is what calls them once per decision.
"""

from __future__ import annotations

from typing import Any

from fengkong.rules.flat import tally
from fengkong.rules.windows import KeyedWindow


class FlatPool:
    """The arrays every flat store of a pack keeps its rows in (one kernel call per decision
    reaches them all): the head, the slab, the free-chunk lists and the free rows."""

    __slots__ = ("free_rows", "head", "meta", "slab")

    def __init__(self, rows: int = 64) -> None:
        self.head, self.slab, self.meta = tally.new_arrays(rows)
        self.free_rows = list(range(rows - 1, -1, -1))

    def new_row(self) -> int:
        if not self.free_rows:
            rows = len(self.head)
            grown, _, _ = tally.new_arrays(2 * rows, slab_words=0)
            grown[:rows] = self.head
            self.head = grown
            self.free_rows = list(range(2 * rows - 1, rows - 1, -1))
        return self.free_rows.pop()

    def release(self, row: int) -> None:
        tally.release(self.head, self.slab, self.meta, row)
        self.free_rows.append(row)

    def add(self, row: int, idx: int, amount: int) -> None:
        hi, lo = tally.split(amount)
        while tally.add(self.head, self.slab, self.meta, row, idx, hi, lo) == tally.NEED_SPACE:
            self.slab = tally.grown(self.slab)

    def add_many(self, rows: tuple, idxs: tuple, his: tuple, los: tuple) -> None:
        """One decision's updates (:func:`tally.add_many`), the slab grown as needed."""
        start = 0
        while True:
            start = tally.add_many(self.head, self.slab, self.meta, rows, idxs, his, los, start)
            if start < 0:
                return
            self.slab = tally.grown(self.slab)


class FlatCountWindow(KeyedWindow):
    """Number of events per key in the window, in flat arrays."""

    __slots__ = ("pool",)
    _NEWEST = None  # sweeps read each state's newest bucket from the head (see _sweep)

    def __init__(self, g: int, n: int, max_keys: int, scale: int, pool: FlatPool) -> None:
        super().__init__(g, n, max_keys, scale)
        self.pool = pool

    def add(self, key: Any, value: Any, ts: int, now: int) -> None:
        g = self.g
        idx = ts // g
        cutoff = now // g - self.n
        if idx <= cutoff:
            return
        if self._owed:
            self.settle()
        self._fold(key, self._amount(value), idx, cutoff)

    def _amount(self, value: Any) -> int:
        return 1

    def _fold(self, key: Any, amount: int, idx: int, cutoff: int) -> None:
        keys = self.keys
        row = keys.get(key)
        if row is None:
            if len(keys) >= self.max_keys:
                self._make_room(cutoff)
            row = keys[key] = self.pool.new_row()
        else:
            last = int(self.pool.head[row, tally.LAST])
            if last < idx and self._moves(last, idx):
                keys.move_to_end(key)
        self.pool.add(row, idx, amount)
        if cutoff > self._swept:
            self._sweep(cutoff)

    def _make_room(self, cutoff: int) -> None:
        self._sweep(cutoff)
        if len(self.keys) >= self.max_keys:
            self.pool.release(self.keys.popitem(False)[1])

    def _sweep(self, cutoff: int) -> None:
        self._swept = cutoff
        self._owed = False
        self._pop_expired(cutoff, len(self.keys))

    def _pop_expired(self, cutoff: int, limit: int) -> int:
        keys = self.keys
        last = self.pool.head[:, tally.LAST]
        popped = 0
        while keys and popped < limit:
            key, row = keys.popitem(False)
            if last[row] > cutoff:
                keys[key] = row
                keys.move_to_end(key, False)
                break
            self.pool.release(row)
            popped += 1
        return popped

    def _newest(self, state: int) -> int:
        return int(self.pool.head[state, tally.LAST])

    def read(self, key: Any, now: int) -> Any:
        if self._owed:
            self.settle()
        row = self.keys.get(key)
        if row is None:
            total = 0
        else:
            pool = self.pool
            cutoff = now // self.g - self.n
            if pool.head[row, tally.FIRST] <= cutoff:
                tally.expire(pool.head, pool.slab, pool.meta, row, cutoff)
            total = tally.total(pool.head, row)
        return total / self.scale if self.scale != 1 else total

    def _state_out(self, state: int) -> Any:
        out = self._out
        pairs = tally.buckets(self.pool.head, self.pool.slab, state)
        return [[idx, out(amount)] for idx, amount in pairs]

    def _state_in(self, data: Any) -> int:
        row = self.pool.new_row()
        for idx, amount in data:
            self.pool.add(row, idx, self._in(amount))
        return row

    def restore(self, data: dict) -> None:
        for row in self.keys.values():
            self.pool.release(row)
        super().restore(data)


class FlatSumWindow(FlatCountWindow):
    """Sum of a numeric field per key in the window (exact), in flat arrays."""

    __slots__ = ()

    def _amount(self, value: Any) -> int:
        return value
