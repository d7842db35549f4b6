"""How the kernels report the ids that die: the ``ctl`` words and the ``dead`` list.

A key id (:mod:`.keyed`) lives while a store holds its key; a value id (a distinct store's
value, :mod:`.distinct`) while a set holds its value. The last column of an id's first row
counts its holders. When it falls to 0 the kernel sets it to ``-epoch`` of the call (so the
id is listed once per call) and lists ``(table << TABLE_SHIFT) | id`` in ``dead``; the owner
deletes the listed ids from their tables once the call returns (``FlatPool.reap``). A
distinct store's row in sketch mode that the call let go is listed as
``SKETCH_TAG | (slot << TABLE_SHIFT) | id``: its sketch is the owner's to drop.
"""

from __future__ import annotations

from fengkong.rules.flat.jit import kernel

# ``ctl``: the number of ids listed in ``dead``, the call's epoch, and the result of the
# update of a one-operation ``keyed.add``
DEAD, EPOCH, RESULT = range(3)
CTL_WIDTH = 3
TABLE_SHIFT = 40
SKETCH_TAG = 1 << 62
ID_MASK = (1 << TABLE_SHIFT) - 1


@kernel
def listed(ctl, dead, code):
    """List ``code`` in ``dead``."""
    dead[ctl[DEAD]] = code
    ctl[DEAD] += 1


@kernel
def ref(values, vid):
    """One more set holds value id ``vid`` (``values``: one column, its holders)."""
    held = values[vid, 0]
    values[vid, 0] = (held if held > 0 else 0) + 1


@kernel
def unref(values, ctl, dead, table, vid):
    """One set fewer holds value id ``vid`` of value table ``table``; listed dead at 0."""
    held = values[vid, 0] - 1
    if held == 0:
        held = -ctl[EPOCH]
        listed(ctl, dead, (table << TABLE_SHIFT) | vid)
    values[vid, 0] = held


@kernel
def settle(head, first, ctl, dead, code):
    """After updates: an id no holder took (a fresh id, first row ``first``) is dead too."""
    holders = head[first, head.shape[1] - 1]
    if holders <= 0 and holders != -ctl[EPOCH]:
        head[first, head.shape[1] - 1] = -ctl[EPOCH]
        listed(ctl, dead, code)
