"""The arrays and key tables a pack's flat stores share (:mod:`.keyed`), and their growth.

A key table maps a key expression's values (an account, an address, a :class:`Pair`) to dense
ids, one table per key expression (the fields a feature is keyed by), so that a decision looks
each key up once however many stores hold it, and finds the key's rows in every store of the
table side by side. An id lives while a store holds it; the kernels list the ids whose last
holder let go, and :meth:`FlatPool.reap` deletes them from their table and frees them, after
every call.

A value table maps the values distinct counts count (of one type: a string and a number
never share an id) to ids the same way: one row of one column per id, the number of sets
holding the value (:mod:`.ids`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fengkong.rules.flat import keyed, tally
from fengkong.rules.flat.ids import CTL_WIDTH, ID_MASK, SKETCH_TAG, TABLE_SHIFT
from fengkong.rules.flat.keyed import BACK, FRONT, NEXT, PREV, ROW_WIDTH, ST_WIDTH, SWEPT, WIDTH

_NEVER = -(2**62)
_NO_TABLE = tally.empty_rows(0, ROW_WIDTH)  # pads ``heads`` (see keyed.padded)
_READY = 1024  # the ids whose rows fresh() makes empty at a time


class KeyTable:
    """The ids of one key expression's values: ``ids`` (key -> id), ``key_of`` (id -> key,
    ``None``: free), ``free`` (the ids let go, taken again first), ``unused`` (the first id
    never taken), ``ready`` (the ids below it have empty rows; the rows above are zeros until
    :meth:`FlatPool.fresh` nears them), and ``head``, ``width`` rows per id (one per store of
    the table: ``j``, from ``free_js`` when a store closed), and ``last_values``: the values of
    the table's last-value stores, by id."""

    __slots__ = (
        "free",
        "free_js",
        "head",
        "ids",
        "index",
        "key_of",
        "last_values",
        "ready",
        "unused",
        "width",
    )

    def __init__(self, index: int, capacity: int) -> None:
        self.index = index
        self.ids: dict[Any, int] = {}
        self.key_of: list[Any] = [None] * capacity
        self.free: list[int] = []
        self.unused = 0
        self.ready = 0
        self.width = 0
        self.head = tally.empty_rows(0, ROW_WIDTH)
        self.free_js: list[int] = []
        self.last_values: list[dict[int, Any]] = []


class FlatPool:
    """The shared arrays (see :mod:`.keyed` for each), the key and value tables, which store
    slots are free, the sketches of distinct stores by slot (each by key id), and ``read``
    and ``read_distinct``, :func:`keyed.read` and :func:`keyed.read_distinct` compiled for
    the arrays."""

    __slots__ = (
        "ctl",
        "dead",
        "free_slots",
        "heads",
        "meta",
        "read",
        "read_distinct",
        "sketches",
        "slab",
        "st",
        "tables",
    )

    def __init__(self, slots: int = 4) -> None:
        self.slab, self.meta = tally.new_slab()
        self.ctl = np.zeros(CTL_WIDTH, np.int64)
        self.st = np.zeros((slots, ST_WIDTH), np.int64)
        self.free_slots = list(range(slots - 1, -1, -1))
        self.tables: dict[tuple[str, ...], KeyTable] = {}
        self.heads: tuple[np.ndarray, ...] = (_NO_TABLE,) * keyed.padded(0, 2)
        self.read = keyed.reader(len(self.heads))
        self.read_distinct: Any = None  # compiled once a distinct store joins
        self.sketches: dict[int, dict[int, Any]] = {}
        self.dead = np.zeros(64, np.int64)

    @property
    def arrays(self) -> tuple[Any, ...]:
        """What every kernel takes first, in order."""
        return self.heads, self.slab, self.meta, self.st, self.ctl, self.dead

    def table(self, fields: tuple[str, ...]) -> KeyTable:
        """The key table of a key expression (the fields a feature is keyed by)."""
        table = self.tables.get(fields)
        if table is None:
            table = self.tables[fields] = KeyTable(len(self.tables), 64)
            self._rearrayed()
        return table

    def value_table(self, kind: str) -> KeyTable:
        """The value table of the values of one type (``kind``, its name): one column per
        id, its holders; its rows need no making empty (0 holders is empty)."""
        fields = ("#values", kind)
        table = self.tables.get(fields)
        if table is None:
            table = self.tables[fields] = KeyTable(len(self.tables), 64)
            table.width = 1
            table.head = np.zeros((64, 1), np.int64)
            table.ready = -1  # never reached: see fresh
            self._rearrayed()
        if self.read_distinct is None:
            self.read_distinct = keyed.distinct_reader(len(self.heads))
        return table

    # --- store slots ----------------------------------------------------------------------

    def open_slot(
        self, table: KeyTable, g: int, n: int, span: int, max_keys: int, kind: int = keyed.SUM
    ) -> int:
        """A store slot with no key and no sweep yet, with a row for every id of ``table``;
        ``kind``: what its rows hold (``keyed.SUM``, ``MIN`` or ``MAX``)."""
        if not self.free_slots:
            slots = len(self.st)
            st = np.zeros((2 * slots, ST_WIDTH), np.int64)
            st[:slots] = self.st
            self.st = st
            self.free_slots = list(range(2 * slots - 1, slots - 1, -1))
        if not table.free_js:
            self._widen(table)
        s = self.free_slots.pop()
        row = self.st[s]
        row[:] = 0
        row[[FRONT, BACK]] = -1
        row[SWEPT] = _NEVER
        row[[keyed.G, keyed.N, keyed.SPAN, keyed.MAX_KEYS]] = (g, n, span, max_keys)
        row[[keyed.TABLE, keyed.J, WIDTH]] = (table.index, table.free_js.pop(), table.width)
        row[keyed.KIND] = kind
        return s

    def close_slot(self, s: int) -> None:
        """Empty slot ``s`` (its keys popped, the ids only it held freed), then free it."""
        self.reap(keyed.clear(*self.arrays, s))
        table = next(t for t in self.tables.values() if t.index == self.st[s, keyed.TABLE])
        table.free_js.append(int(self.st[s, keyed.J]))
        self.st[s] = 0
        self.st[s, [FRONT, BACK]] = -1
        self.free_slots.append(s)

    def _widen(self, table: KeyTable) -> None:
        """One more row per id in ``table`` (a store joins it): rows move from ``g * w + j``
        to ``g * (w + 1) + j``, and the stores' links with them."""
        w = table.width
        ids = len(table.key_of)
        head = tally.empty_rows(ids * (w + 1), ROW_WIDTH)
        if w:
            head.reshape(ids, w + 1, ROW_WIDTH)[:, :w] = table.head.reshape(ids, w, ROW_WIDTH)
            links = head[:, [PREV, NEXT]]
            moved = links >= 0
            links[moved] = links[moved] // w * (w + 1) + links[moved] % w
            head[:, [PREV, NEXT]] = links
            mine = (self.st[:, WIDTH] > 0) & (self.st[:, keyed.TABLE] == table.index)
            ends = self.st[mine][:, [FRONT, BACK]]
            kept = ends >= 0
            ends[kept] = ends[kept] // w * (w + 1) + ends[kept] % w
            self.st[np.flatnonzero(mine)[:, None], [FRONT, BACK]] = ends
            self.st[mine, WIDTH] = w + 1
        table.head = head
        if not w:  # every row is new, and empty (past ``ready``, the old rows' zeros moved)
            table.ready = ids
        table.free_js.append(w)
        table.width = w + 1
        self._rearrayed()

    # --- ids ------------------------------------------------------------------------------

    def fresh(self, table: KeyTable, key: Any) -> int:
        """A new id for ``key`` in ``table`` (no store holds it yet: a call that does not
        take it lists it dead): the id let go last, else the first never taken, the table
        doubled if it has none. The new rows are zero pages, taken from the system as they
        are first written and made empty ``_READY`` ids at a time, so that no decision pays
        for all of them: made empty at once, the rows of a 28 MB table doubling took
        110 ms here."""
        if table.free:
            g = table.free.pop()
        else:
            g = table.unused
            ids = len(table.key_of)
            if g == ids:
                head = np.zeros((2 * ids * table.width, table.head.shape[1]), np.int64)
                head[: len(table.head)] = table.head
                table.head = head
                table.key_of += [None] * ids
                self._rearrayed()
            if g == table.ready:
                ready = min(g + _READY, len(table.key_of))
                tally.make_empty(table.head[g * table.width : ready * table.width])
                table.ready = ready
            table.unused = g + 1
        table.ids[key] = g
        table.key_of[g] = key
        return g

    def reap(self, listed: int) -> None:
        """Delete the ``listed`` dead ids of the last call from their tables, and free them."""
        if not listed:
            return
        tables = list(self.tables.values())
        for code in self.dead[:listed].tolist():
            if code >= SKETCH_TAG:  # a distinct store let a key in sketch mode go
                del self.sketches[(code - SKETCH_TAG) >> TABLE_SHIFT][code & ID_MASK]
                continue
            table = tables[code >> TABLE_SHIFT]
            g = code & ID_MASK
            key = table.key_of[g]
            if key is None:  # listed twice: died, taken again, and died again in one call
                continue
            del table.ids[key]
            table.key_of[g] = None
            table.free.append(g)
            for values in table.last_values:
                values.pop(g, None)

    def _rearrayed(self) -> None:
        """After a table's head changed: the tuple the kernels take (padded, see
        :func:`keyed.padded`), and room in ``dead`` for every row of every table (a call lists
        each dropped row's id at most once)."""
        heads = [table.head for table in self.tables.values()]
        self.heads = tuple(heads + [_NO_TABLE] * (keyed.padded(len(heads), 2) - len(heads)))
        self.read = keyed.reader(len(self.heads))
        if self.read_distinct is not None:
            self.read_distinct = keyed.distinct_reader(len(self.heads))
        rows = sum(len(table.head) + len(table.key_of) for table in self.tables.values())
        if len(self.dead) < rows + 64:
            self.dead = np.zeros(2 * (rows + 64), np.int64)

    # --- growth ---------------------------------------------------------------------------

    def grow(self, need: int) -> None:
        """Room for the call that returned ``need`` (``NEED_SLAB``)."""
        self.slab = tally.grown(self.slab)
