"""The arrays and key tables a pack's flat stores share (:mod:`.keyed`), and their growth.

A key table maps a key expression's values (an account, an address, a :class:`Pair`) to dense
ids, one table per key expression (the fields a feature is keyed by), so that a decision looks
each key up once however many stores hold it. An id lives while a store holds it; the kernels
list the ids whose last holder let go, and :meth:`FlatPool.reap` deletes them from their
table and frees them, after every call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fengkong.rules.flat import keyed, tally
from fengkong.rules.flat.keyed import (
    BACK,
    CTL_WIDTH,
    FREE_ROW,
    FREE_ROWS,
    FRONT,
    HOLDERS,
    MAX_KEYS,
    NEED_ROWS,
    SPAN,
    ST_WIDTH,
    SWEPT,
)
from fengkong.rules.flat.tally import GID, NEXT, PREV

_NEVER = -(2**62)


class FlatPool:
    """The shared arrays (see :mod:`.keyed` for each), the key tables, and which ids and
    store slots are free."""

    __slots__ = (
        "ctl",
        "dead",
        "free_ids",
        "free_slots",
        "head",
        "key_of",
        "meta",
        "rowmap",
        "slab",
        "st",
        "table_of",
        "tables",
    )

    def __init__(self, rows: int = 64, ids: int = 64, slots: int = 4) -> None:
        self.head, self.slab, self.meta = tally.new_arrays(rows)
        self.ctl = np.zeros(CTL_WIDTH, np.int64)
        self.ctl[FREE_ROW] = -1
        self._free_rows(0, rows)
        self.rowmap = np.full((ids, 1 + slots), -1, np.int64)
        self.rowmap[:, HOLDERS] = 0
        self.dead = np.zeros(ids, np.int64)
        self.key_of: list[Any] = [None] * ids
        self.table_of: list[dict | None] = [None] * ids
        self.free_ids = list(range(ids - 1, -1, -1))
        self.st = np.zeros((slots, ST_WIDTH), np.int64)
        self.st[:, FRONT] = -1
        self.st[:, BACK] = -1
        self.free_slots = list(range(slots - 1, -1, -1))
        self.tables: dict[tuple[str, ...], dict] = {}

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays every kernel takes first, in order."""
        return self.head, self.slab, self.meta, self.rowmap, self.st, self.ctl, self.dead

    def table(self, fields: tuple[str, ...]) -> dict:
        """The key table of a key expression (the fields a feature is keyed by)."""
        return self.tables.setdefault(fields, {})

    # --- store slots ----------------------------------------------------------------------

    def open_slot(self, g: int, n: int, span: int, max_keys: int) -> int:
        """A store slot with no key and no sweep yet."""
        if not self.free_slots:
            slots = len(self.st)
            st = np.zeros((2 * slots, ST_WIDTH), np.int64)
            st[:slots] = self.st
            st[slots:, FRONT] = -1
            st[slots:, BACK] = -1
            rowmap = np.full((len(self.rowmap), 1 + 2 * slots), -1, np.int64)
            rowmap[:, : 1 + slots] = self.rowmap
            self.st, self.rowmap = st, rowmap
            self.free_slots = list(range(2 * slots - 1, slots - 1, -1))
        s = self.free_slots.pop()
        self.st[s] = 0
        self.st[s, [FRONT, BACK]] = -1
        self.st[s, SWEPT] = _NEVER
        self.st[s, [keyed.G, keyed.N, SPAN, MAX_KEYS]] = (g, n, span, max_keys)
        return s

    def close_slot(self, s: int) -> None:
        """Free slot ``s``'s rows and the ids only it held, then the slot."""
        self.reap(keyed.clear(*self.arrays, s))
        self.free_slots.append(s)

    # --- ids ------------------------------------------------------------------------------

    def fresh(self, table: dict, key: Any) -> int:
        """A new id for ``key`` in ``table`` (no store holds it yet: a call that does not
        take it lists it dead)."""
        if not self.free_ids:
            ids = len(self.rowmap)
            rowmap = np.full((2 * ids, self.rowmap.shape[1]), -1, np.int64)
            rowmap[:ids] = self.rowmap
            rowmap[ids:, HOLDERS] = 0
            self.rowmap = rowmap
            self.dead = np.zeros(2 * ids, np.int64)
            self.key_of += [None] * ids
            self.table_of += [None] * ids
            self.free_ids = list(range(2 * ids - 1, ids - 1, -1))
        g = self.free_ids.pop()
        table[key] = g
        self.key_of[g] = key
        self.table_of[g] = table
        return g

    def reap(self, listed: int) -> None:
        """Delete the ``listed`` dead ids of the last call from their tables, and free them."""
        if not listed:
            return
        key_of, table_of, free = self.key_of, self.table_of, self.free_ids
        for g in self.dead[:listed].tolist():
            del table_of[g][key_of[g]]
            key_of[g] = table_of[g] = None
            free.append(g)

    # --- growth ---------------------------------------------------------------------------

    def grow(self, need: int) -> None:
        """Room for the call that returned ``need`` (``NEED_ROWS`` or ``NEED_SLAB``)."""
        if need == NEED_ROWS:
            rows = len(self.head)
            head, _, _ = tally.new_arrays(2 * rows, slab_words=0)
            head[:rows] = self.head
            self.head = head
            self._free_rows(rows, 2 * rows)
        else:
            self.slab = tally.grown(self.slab)

    def _free_rows(self, start: int, stop: int) -> None:
        """Link rows ``[start, stop)`` in front of the free list."""
        head = self.head
        head[start:stop, PREV] = -1
        head[start:stop, GID] = -1
        head[start : stop - 1, NEXT] = np.arange(start + 1, stop)
        head[stop - 1, NEXT] = self.ctl[FREE_ROW]
        self.ctl[FREE_ROW] = start
        self.ctl[FREE_ROWS] += stop - start
