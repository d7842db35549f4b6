"""The flat exact distinct set against ``DistinctWindow``'s dict operations, operation by
operation: values seen again in newer and older buckets, late values, eviction, and the
values' reference counts (how many sets hold each), the slab growing under them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.rules.flat import distinct, ids, tally
from fengkong.rules.windows import DistinctWindow, _empty_distinct, _evict_exact, _values

IDS = 3
VALUES = 6

# (id, time step, bucket offset back from now (late), value id, then evict at now - 6)
operations = st.lists(
    st.tuples(
        st.integers(0, IDS - 1),
        st.integers(0, 3),
        st.integers(0, 9),
        st.integers(0, VALUES - 1),
        st.booleans(),
    ),
    min_size=1,
    max_size=100,
)


@settings(max_examples=400, deadline=None)
@given(ops=operations)
def test_matches_the_python_set_after_every_operation(ops):
    window = DistinctWindow(1, 8, 10, exact_limit=10**9)
    states = [_empty_distinct() for _ in range(IDS)]
    head = tally.empty_rows(IDS)
    slab, meta = tally.new_slab(3)  # one triple: the slab grows under the sets
    refs = np.zeros((VALUES, 1), np.int64)  # a value table's rows: their holders
    ctl = np.zeros(ids.CTL_WIDTH, np.int64)
    dead = np.zeros(4 * VALUES, np.int64)
    now = 100
    for i, step, late, vid, evict in ops:
        ctl[ids.EPOCH] += 1
        ctl[ids.DEAD] = 0
        before = refs[:, 0].tolist()
        now += step
        idx = now - late
        window._add_exact(states[i], idx, vid)
        while distinct.add(head, slab, meta, refs, i, idx, vid) == tally.NEED_SPACE:
            slab = tally.grown(slab)
        if evict:
            _evict_exact(states[i], now - 6)
            distinct.evict(head, slab, meta, refs, ctl, dead, 7, i, now - 6)
        for j in range(IDS):
            assert distinct.members(head, slab, j) == list(_values(states[j])), (j, now)
            got = int(head[j, tally.LAST]), int(head[j, tally.LENGTH])
            empty = len(states[j]) == 2
            assert got == (
                (tally.NEVER, 0) if empty else (states[j][list(states[j])[-1]], len(states[j]) - 2)
            )
        held = [sum(v in states[j] for j in range(IDS)) for v in range(VALUES)]
        assert [max(0, r) for r in refs[:, 0].tolist()] == held
        let_go = [v for v in range(VALUES) if (before[v] > 0 or v == vid) and not held[v]]
        listed = sorted(dead[: ctl[ids.DEAD]].tolist())
        assert listed == [(7 << ids.TABLE_SHIFT) | v for v in let_go]
