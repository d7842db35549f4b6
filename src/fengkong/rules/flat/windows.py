"""Count, sum, min, max, last-value and distinct-count stores kept in a
:class:`~fengkong.rules.flat.pool.FlatPool`'s arrays: :class:`~fengkong.rules.windows.CountWindow`,
:class:`~fengkong.rules.windows.SumWindow`, :class:`~fengkong.rules.windows.ExtremumWindow`,
:class:`~fengkong.rules.windows.LastWindow` and :class:`~fengkong.rules.windows.DistinctWindow`
with the same keys, update order, sweeps, reads and canonical state (a differential test
compares them event by event).

A store is a slot of the pool; its keys are ids of the pool's key table for its key
expression, shared with the pool's other stores keyed the same way. These methods call the
kernels one operation at a time (the reference path, snapshots, tests); a pack's fused step
calls :func:`~fengkong.rules.flat.keyed.decide` once per decision instead (twice when a
filter reads a feature).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from fengkong.rules.flat import distinct, extremum, keyed, tally
from fengkong.rules.flat.ids import RESULT
from fengkong.rules.flat.keyed import FRONT, HELD, KEYS, NEXT, OWED, SKETCHED, SWEPT, J
from fengkong.rules.flat.pool import FlatPool
from fengkong.rules.sketch import Sketch
from fengkong.rules.windows import SPAN, KeyedWindow, _key_in, _key_out


class FlatCountWindow(KeyedWindow):
    """Number of events per key in the window, in a pool's arrays (slot ``slot``, keys in
    ``table``)."""

    __slots__ = ("_read_out", "pool", "slot", "table")
    _NEWEST = None

    def __init__(
        self,
        g: int,
        n: int,
        max_keys: int,
        scale: int,
        pool: FlatPool,
        fields: tuple = ("k",),
        kind: int = keyed.SUM,
    ) -> None:
        self.g = g
        self.n = n
        self.max_keys = max_keys
        self.scale = scale
        self.span = max(1, min(n // 2, SPAN))
        self.pool = pool
        self.table = pool.table(fields)
        self.slot = pool.open_slot(self.table, g, n, self.span, max_keys, kind)
        self._read_out = np.zeros(3, np.int64)

    # the sweep's cutoff and whether it is owed live in the pool's ``st`` (the kernels')
    @property
    def _swept(self) -> int:  # type: ignore[override]
        return int(self.pool.st[self.slot, SWEPT])

    @property
    def _owed(self) -> bool:  # type: ignore[override]
        return bool(self.pool.st[self.slot, OWED])

    @property
    def keys(self) -> OrderedDict:  # type: ignore[override]
        """A copy: each key -> its row, in update order."""
        table = self.table
        return OrderedDict((table.key_of[row // table.width], row) for row in self._rows())

    def __len__(self) -> int:
        return int(self.pool.st[self.slot, KEYS])

    def _rows(self) -> list[int]:
        head = self.table.head
        rows = []
        row = int(self.pool.st[self.slot, FRONT])
        while row >= 0:
            rows.append(row)
            row = int(head[row, NEXT])
        return rows

    def close(self) -> None:
        """Give the slot, its rows and the ids only it held back to the pool (the store is
        not used again)."""
        self.pool.close_slot(self.slot)

    # --- one operation at a time ----------------------------------------------------------

    def add(self, key: Any, value: Any, ts: int, now: int) -> None:
        g = self.g
        idx = ts // g
        cutoff = now // g - self.n
        if idx <= cutoff:
            return
        if self._owed:
            self.settle()
        pool = self.pool
        gid = self.table.ids.get(key, -1)
        if gid < 0:
            gid = pool.fresh(self.table, key)
        hi, lo = self._words(value)
        while (listed := keyed.add(*pool.arrays, self.slot, gid, ts, idx, cutoff, hi, lo)) < 0:
            pool.grow(listed)
        pool.reap(listed)
        self._took(int(pool.ctl[RESULT]), gid, ts, now, value)

    def _took(self, result: int, gid: int, ts: int, now: int, value: Any) -> None:
        """After an update of id ``gid`` whose result (``keyed._update``) is ``result``: a
        last value keeps the event's value here, a distinct count its sketch."""

    def _words(self, value: Any) -> tuple[int, int]:
        """The update's two words (``keyed._update``'s ``hi, lo``)."""
        return tally.split(self._amount(value))

    def _amount(self, value: Any) -> int:
        return 1

    def read(self, key: Any, now: int) -> Any:
        """The key's total. A key with no expired bucket is read from its row here; the
        kernel drops expired buckets (a kernel call costs about 1 µs, most of it taking
        the arrays as arguments: the evaluator, outside the fused step, reads one store at
        a time)."""
        pool = self.pool
        if pool.st.item(self.slot, OWED):
            self.settle()
        gid = self.table.ids.get(key, -1)
        cutoff = now // self.g - self.n
        table = self.table
        head = table.head
        row = gid * table.width + pool.st.item(self.slot, J)
        if gid < 0 or not head.item(row, HELD):
            total = 0
        elif head.item(row, tally.FIRST) > cutoff:
            total = head.item(row, tally.TOTAL_HI) * tally.BASE + head.item(row, tally.TOTAL_LO)
        else:
            out = self._read_out
            pool.read(pool.heads, pool.slab, pool.meta, pool.st, self.slot, gid, cutoff, out)
            total = tally.joined(int(out[1]), int(out[2]))
        return total / self.scale if self.scale != 1 else total

    def _sweep(self, cutoff: int) -> None:
        self.pool.reap(keyed.sweep(*self.pool.arrays, self.slot, cutoff))

    def defer(self, cutoff: int) -> int:
        st = self.pool.st
        st[self.slot, SWEPT] = cutoff
        st[self.slot, OWED] = 1
        st[self.slot, keyed.POPPED] = 0
        due = (cutoff + self.n + 1) * self.g
        st[self.slot, keyed.DUE] = due
        return due

    def drain(self, limit: int) -> int:
        pool = self.pool
        popped = keyed.drain(*pool.arrays, self.slot, limit)
        pool.reap(int(pool.ctl[keyed.DEAD]))
        return popped

    def stale(self, state: int) -> bool:
        return self._newest(state) <= self._swept

    def _newest(self, state: int) -> int:
        return int(self.table.head[state, tally.LAST])

    # --- canonical state ------------------------------------------------------------------

    def state(self) -> dict:
        self.settle()
        table = self.table
        keys = [
            [_key_out(table.key_of[row // table.width]), self._row_out(row)] for row in self._rows()
        ]
        return {"swept": self._swept, "keys": keys}

    def _row_out(self, row: int) -> Any:
        """One key's state, as the Python store's ``_state_out`` writes it."""
        pairs = tally.buckets(self.table.head, self.pool.slab, row)
        return [[idx, self._out(amount)] for idx, amount in pairs]

    def restore(self, data: dict) -> None:
        pool = self.pool
        pool.reap(keyed.clear(*pool.arrays, self.slot))
        st = pool.st
        st[self.slot, SWEPT] = data["swept"]
        st[self.slot, OWED] = 0
        for key_data, key_state in data["keys"]:
            key = _key_in(key_data)
            gid = self.table.ids.get(key, -1)
            if gid < 0:
                gid = pool.fresh(self.table, key)
            row = keyed.append(pool.heads, pool.st, self.slot, gid)
            self._restore_key(row, key_state)

    def _restore_key(self, row: int, data: Any) -> None:
        """A snapshot's state of one key into its new ``row``."""
        for idx, amount in data:
            self._fold(row, idx, self._in(amount))

    def _fold(self, row: int, idx: int, amount: int) -> None:
        """Fold a snapshot's bucket into ``row`` (buckets come in ascending order)."""
        pool = self.pool
        hi, lo = tally.split(amount)
        while tally.add(self.table.head, pool.slab, pool.meta, row, idx, hi, lo):
            pool.grow(keyed.NEED_SLAB)


class FlatSumWindow(FlatCountWindow):
    """Sum of an integer or decimal field per key in the window (exact), in a pool's arrays."""

    __slots__ = ()

    def _amount(self, value: Any) -> int:
        return value


class FlatExtremumWindow(FlatCountWindow):
    """Minimum or maximum of an integer or decimal field per key in the window (exact), in a
    pool's arrays: :class:`~fengkong.rules.windows.ExtremumWindow`'s monotone queue, as
    ``(bucket, hi, lo)`` triples in the slab (:mod:`.extremum`)."""

    __slots__ = ("default", "lowest")

    def __init__(
        self,
        g: int,
        n: int,
        max_keys: int,
        scale: int,
        pick: Any,
        default: Any,
        pool: FlatPool,
        fields: tuple = ("k",),
    ) -> None:
        self.lowest = pick is min
        self.default = default
        kind = keyed.MIN if self.lowest else keyed.MAX
        super().__init__(g, n, max_keys, scale, pool, fields, kind)

    def _amount(self, value: Any) -> int:
        return value

    def read(self, key: Any, now: int) -> Any:
        pool = self.pool
        if pool.st.item(self.slot, OWED):
            self.settle()
        out = self._read_out
        cutoff = now // self.g - self.n
        gid = self.table.ids.get(key, -1)
        pool.read(pool.heads, pool.slab, pool.meta, pool.st, self.slot, gid, cutoff, out)
        if not out[0]:
            return self.default
        best = tally.joined(int(out[1]), int(out[2]))
        return best / self.scale if self.scale != 1 else best

    def _row_out(self, row: int) -> Any:
        pairs = extremum.pairs(self.table.head, self.pool.slab, row)
        return [[idx, self._out(tally.joined(hi, lo))] for idx, hi, lo in pairs]

    def _fold(self, row: int, idx: int, value: int) -> None:
        """A snapshot's pairs in bucket order make the queue they would (a pair a later one
        beats, as in a snapshot taken before stores kept only the others, is dropped)."""
        pool = self.pool
        hi, lo = tally.split(value)
        while extremum.add(self.table.head, pool.slab, pool.meta, row, idx, hi, lo, self.lowest):
            pool.grow(keyed.NEED_SLAB)


class FlatLastWindow(FlatCountWindow):
    """The value of the latest event (by event time, then arrival) per key in the window:
    :class:`~fengkong.rules.windows.LastWindow` with its bucket and time in the pool's rows
    (so that its keys' order, sweeps and evictions are the kernel's) and its values here,
    by key id (``values``; the pool drops an id's value when the id dies)."""

    __slots__ = ("default", "values")

    def __init__(
        self,
        g: int,
        n: int,
        max_keys: int,
        scale: int,
        default: Any,
        pool: FlatPool,
        fields: tuple = ("k",),
    ) -> None:
        super().__init__(g, n, max_keys, scale, pool, fields, keyed.LATEST)
        self.default = default
        self.values: dict[int, Any] = {}
        self.table.last_values.append(self.values)

    def close(self) -> None:
        table = self.table  # by identity: another store's dict may be equal to this one
        table.last_values = [values for values in table.last_values if values is not self.values]
        super().close()

    def _took(self, result: int, gid: int, ts: int, now: int, value: Any) -> None:
        if result:
            self.values[gid] = value  # the row took the event

    def read(self, key: Any, now: int) -> Any:
        pool = self.pool
        if pool.st.item(self.slot, OWED):
            self.settle()
        gid = self.table.ids.get(key, -1)
        table = self.table
        row = gid * table.width + pool.st.item(self.slot, J)
        if (
            gid < 0
            or not table.head.item(row, HELD)
            or table.head.item(row, tally.LAST) <= now // self.g - self.n
        ):
            return self.default
        value = self.values[gid]
        return value / self.scale if self.scale != 1 else value

    def _row_out(self, row: int) -> Any:
        head = self.table.head
        value = self.values[row // self.table.width]
        return [int(head[row, tally.LAST]), int(head[row, keyed.TS]), self._out(value)]

    def _restore_key(self, row: int, data: Any) -> None:
        idx, ts, value = data
        head = self.table.head
        head[row, tally.FIRST] = head[row, tally.LAST] = idx
        head[row, keyed.TS] = ts
        self.values[row // self.table.width] = self._in(value)


class FlatDistinctWindow(FlatCountWindow):
    """Number of distinct values of a field per key in the window, in a pool's arrays:
    :class:`~fengkong.rules.windows.DistinctWindow`'s exact set as value ids in the slab
    (:mod:`.distinct`), then, past ``exact_limit`` values, its per-bucket HyperLogLog
    (``sketches``, by key id, kept here with the row in sketch mode: see :mod:`.keyed`).
    ``values``: the pool's value table for the field's type (``kind``)."""

    __slots__ = ("exact_limit", "sketches", "values")

    def __init__(
        self,
        g: int,
        n: int,
        max_keys: int,
        exact_limit: int,
        scale: int,
        pool: FlatPool,
        fields: tuple = ("k",),
        kind: str = "str",
    ) -> None:
        super().__init__(g, n, max_keys, scale, pool, fields, keyed.DISTINCT)
        self.exact_limit = exact_limit
        self.values = pool.value_table(kind)
        pool.st[self.slot, keyed.VALUES] = self.values.index
        pool.st[self.slot, keyed.LIMIT] = exact_limit
        self.sketches: dict[int, Sketch] = {}
        pool.sketches[self.slot] = self.sketches

    def close(self) -> None:
        super().close()
        del self.pool.sketches[self.slot]

    def _words(self, value: Any) -> tuple[int, int]:
        vid = self.values.ids.get(value, -1)
        return (vid if vid >= 0 else self.pool.fresh(self.values, value)), 0

    def _took(self, result: int, gid: int, ts: int, now: int, value: Any) -> None:
        if result:
            self.after_update(result, gid, value, ts, now)

    def after_update(self, result: int, gid: int, value: Any, ts: int, now: int) -> None:
        """What an update that reported ``result`` (1 or 2, see :mod:`.keyed`) leaves to
        the store, after the call and its dead ids reaped: ``DistinctWindow._add_sketch``'s
        eviction and add, or ``_to_sketch`` of the set and the value."""
        idx = ts // self.g
        if result == 1:
            sketch = self.sketches[gid]
            sketch.evict(now // self.g - self.n)
            sketch.add(idx, value)
            return
        pool = self.pool
        row = gid * self.table.width + pool.st.item(self.slot, J)
        key_of = self.values.key_of
        sketch = Sketch()  # its registers do not depend on the order of the adds
        for vid, bucket in distinct.members(self.table.head, pool.slab, row):
            sketch.add(bucket, key_of[vid])
        sketch.add(idx, value)
        self.sketches[gid] = sketch
        pool.reap(keyed.to_sketch(*pool.arrays, self.slot, gid, idx))

    def read(self, key: Any, now: int) -> int:
        """The key's number of values: an exact set with no expired value is read from its
        row here, the kernel evicts expired values, and a sketch is read here."""
        pool = self.pool
        gid = self.table.ids.get(key, -1)
        cutoff = now // self.g - self.n
        head = self.table.head
        row = gid * self.table.width + pool.st.item(self.slot, J)
        if gid < 0 or not head.item(row, HELD):
            return 0
        if not head.item(row, SKETCHED) and head.item(row, tally.FIRST) > cutoff:
            return head.item(row, tally.LENGTH)
        out = self._read_out
        pool.reap(
            pool.read_distinct(*pool.arrays, self.slot, gid, cutoff, out)  # type: ignore[misc]
        )
        if out[0] == 2:
            return self.sketch_read(gid, cutoff)
        return int(out[2])

    def sketch_read(self, gid: int, cutoff: int) -> int:
        """The estimate of id ``gid``'s sketch (a row in sketch mode whose read reported 2),
        its expired buckets evicted and the row's ``LAST`` kept its newest bucket (unless the
        call that read it let the row go since: its sketch goes when the call is reaped)."""
        sketch = self.sketches[gid]
        sketch.evict(cutoff)
        head = self.table.head
        row = gid * self.table.width + self.pool.st.item(self.slot, J)
        if head.item(row, SKETCHED):
            head[row, tally.LAST] = sketch.newest()
        return sketch.estimate()

    def _row_out(self, row: int) -> Any:
        head = self.table.head
        if head[row, SKETCHED]:
            return {"sketch": self.sketches[row // self.table.width].state()}
        members: dict[int, list] = {}
        key_of = self.values.key_of
        for vid, idx in distinct.members(head, self.pool.slab, row):
            members.setdefault(idx, []).append(key_of[vid])
        out = self._out
        return {"exact": [[idx, [out(v) for v in sorted(members[idx])]] for idx in sorted(members)]}

    def _restore_key(self, row: int, data: Any) -> None:
        pool = self.pool
        head = self.table.head
        if "sketch" in data:
            sketch = self.sketches[row // self.table.width] = Sketch.restore(data["sketch"])
            head[row, SKETCHED] = 1
            head[row, tally.LAST] = sketch.newest()
            return
        values = self.values
        for idx, members in data["exact"]:
            for value in members:
                vid, _ = self._words(self._in(value))
                while distinct.add(head, pool.slab, pool.meta, values.head, row, idx, vid):
                    pool.grow(keyed.NEED_SLAB)
