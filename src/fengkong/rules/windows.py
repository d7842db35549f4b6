"""Keyed sliding event-time windows: count, sum, min, max, distinct count and last value.

A window of ``n`` buckets of ``g`` milliseconds covers, at time ``now``, the events whose
bucket ``ts // g`` lies in ``(now // g - n, now // g]``: between ``n*g - g`` and ``n*g`` of
history. ``now`` is the component's clock (the largest event time seen), so a late event is
counted in its own bucket while that bucket is in the window, and dropped once it is not.

Memory per feature (documented bound, see ``docs/rules.md``):

* count / sum: the newest bucket and its amount inline, one ``bucket: value`` entry per
  older non-empty bucket per live key, at most ``n`` per key; a running total makes reads
  O(1) amortized;
* min / max: one ``(bucket, value)`` pair per bucket that no later bucket equals or beats
  (a monotone queue), at most ``n`` per key and about ``ln(n)`` for random values; reads
  O(1) amortized;
* last: one ``(bucket, ts, value)`` per live key;
* distinct: exact (a value -> newest-bucket dict kept in bucket order, and its newest and
  oldest buckets) while a key holds at most ``exact_limit`` distinct values; beyond that the key
  switches, for as long as it stays live, to per-bucket HyperLogLog registers
  (:mod:`fengkong.rules.sketch`), 256 bytes per non-empty bucket, standard error about 6.5 %;
* keys: at most ``max_keys`` per feature; a key whose newest bucket left the window is
  dropped at most ``span - 1`` buckets later (``span``: up to ``SPAN`` buckets), and beyond
  ``max_keys`` a key of the oldest span goes first (see the update order below).

State is plain data in a deterministic order (keys in update order, a :class:`Pair` key as
a two-item list, buckets ascending, distinct values sorted), so :meth:`KeyedWindow.state` /
:meth:`KeyedWindow.restore` reproduce the store exactly.

Hot path (every decided event folds into every feature of its kind): each aggregation has
its own ``add`` and ``read`` with no per-event helper calls. Count and sum keep a
:class:`_Tally` per key (the total, the oldest and newest buckets, the newest bucket's amount
and a ``bucket -> amount`` dict of the older ones), last a :class:`_Last`, min / max a
:class:`_Queue` (the oldest and newest pairs, and a dict of those between). Adding to the
newest bucket is one field update.

*Untracked by the collector.* A key's ``_Tally``, ``_Queue`` and ``_Last``, and a two-field
key (:class:`Pair`), are msgspec structs with ``gc=False``; dicts that hold strings and
numbers only (a tally's older buckets, a queue's middle pairs, a key's distinct values),
CPython does not track either. They hold no reference cycles, so the cycle collector need
not visit them. A tracked state (a list) is visited by every young collection after the key
is created (the benchmark's young collections visited about 600 new key lists each, 90-130
µs) and by every full collection for as long as it lives (a heap of a million keys: most of
a second).

Keys live in an ``OrderedDict`` in update order, by *span*: a key moves to
the end in O(1) when its newest bucket enters a new span of ``span = min(n // 2, SPAN)``
buckets, not on every newer bucket, and the sweep pops the leading run of expired keys from
the front in O(1) each (a plain dict's ``next(iter(...))`` degrades with the holes moves
leave behind). Keys are thus sorted by the span of their newest bucket (for events in time
order), and a key that expired waits behind the unexpired keys of its span at most until
the span's last bucket leaves the window: ``span - 1`` buckets. Moving once per span
instead of once per bucket spares the updates of a busy key the ordered dict's relinking
(about four cache misses each: a key's node and its neighbours are anywhere in memory).
``SPAN`` is bounded by the owed sweeps' pace: the keys a blocked run releases at once
(at most ``span`` buckets' worth) plus one bucket's must be popped, ``DRAIN`` per event,
before the next bucket starts; with one new key per event (a store keyed by IP address),
that needs ``span + 1 <= DRAIN`` (``DRAIN`` is shared by a pack's stores: 4 and 8 leave
room for a second such store). With half-window spans, such a store released thousands of
keys at once and settled them in one event (milliseconds).
A fused step owes the sweeps of count, sum, min, max and last stores, and pops their keys a
few per event (:meth:`KeyedWindow.defer`), so that no event pays for a whole minute's keys.
"""

from __future__ import annotations

from collections import OrderedDict
from collections import deque as _deque
from itertools import compress as _compress
from itertools import count as _count
from itertools import repeat as _repeat
from operator import attrgetter
from typing import Any

import msgspec

from fengkong.rules.sketch import Sketch

DECIMAL_SCALE = 10**18  # decimal amounts are summed exactly as integers of 1e-18 units
_NEVER = -(2**62)  # the newest bucket of a key with no live bucket
_FAR = 2**62  # the oldest bucket of a distinct key with no value
DRAIN = 8  # keys a pack's owed sweeps pop per event, between them (see KeyedWindow.defer)
SPAN = 4  # the most buckets in one step of a store's update order (see KeyedWindow)


class KeyedWindow:
    """One feature's windows for every key. Subclasses keep per-key state and implement
    ``add(key, value, ts, now)`` (fold one event's ``value``, ignored by count, at event
    time ``ts`` into ``key``) and ``read(key, now)``."""

    __slots__ = ("_owed", "_swept", "g", "keys", "max_keys", "n", "scale", "span")
    _NEWEST: Any = None  # getter of a state's newest bucket (None: see _sweep)
    LAZY = True  # whether a sweep may be owed (see defer)

    def __init__(self, g: int, n: int, max_keys: int, scale: int) -> None:
        self.g = g
        self.n = n
        self.max_keys = max_keys
        self.scale = scale  # 1 for integers and strings, DECIMAL_SCALE for decimal amounts
        self.span = max(1, min(n // 2, SPAN))  # buckets per step of the update order
        self.keys: OrderedDict[Any, Any] = OrderedDict()
        self._swept = -(2**62)
        self._owed = False  # the keys of the sweep at ``_swept`` are not all popped yet

    # --- shared key bookkeeping -----------------------------------------------------------

    def add(self, key: Any, value: Any, ts: int, now: int) -> None:
        raise NotImplementedError

    def read(self, key: Any, now: int) -> Any:
        raise NotImplementedError

    def _make_room(self, cutoff: int) -> None:
        """Before inserting a new key into a full store: sweep, then drop the key updated
        longest ago if the store is still full."""
        self._sweep(cutoff)
        if len(self.keys) >= self.max_keys:
            self.keys.popitem(False)

    def _sweep(self, cutoff: int) -> None:
        """Drop keys, oldest update first, whose newest bucket has left the window: the
        leading run of keys with ``newest(state) <= cutoff``, up to the first live key
        (with the keys an owed sweep has not popped yet, which lead that run).

        The run is measured and popped at C speed (``_NEWEST`` gets a state's newest bucket,
        ``_NEVER`` when it has none; a distinct store's sketches need the loop): a sweep after
        a busy minute pops a hundred keys or more in one event."""
        self._swept = cutoff
        self._owed = False
        keys = self.keys
        getter = self._NEWEST
        if getter is not None:
            run = next(_compress(_count(), map(cutoff.__lt__, map(getter, keys.values()))), -1)
            if run < 0:
                run = len(keys)
            _deque(map(keys.popitem, _repeat(False, run)), 0)
            return
        self._pop_expired(cutoff, len(keys))

    def _pop_expired(self, cutoff: int, limit: int) -> int:
        """Pop at most ``limit`` keys of the leading run with ``newest(state) <= cutoff``, one
        by one; the number popped (fewer than ``limit`` once a live key or no key leads)."""
        keys = self.keys
        newest = self._newest
        popped = 0
        while keys and popped < limit:
            key, state = keys.popitem(False)
            if newest(state) > cutoff:
                keys[key] = state
                keys.move_to_end(key, False)
                break
            popped += 1
        return popped

    def defer(self, cutoff: int) -> int:
        """The sweep at ``cutoff``, owed: its keys are popped later, a few per event
        (:func:`drain_owed`), so that the event that moves the cutoff does not pay for every
        key that expired with it (a hundred and more each minute for a 1 h window).

        The store then holds, in front of the keys the sweep keeps, keys the sweep dropped,
        each with no bucket after ``_swept``. Nothing can tell them from absent keys, except
        an update that does not read the key first (the caller tests :meth:`stale` and
        settles): a read at a cutoff ``c >= _swept`` finds no live bucket (0, the default),
        and leaves the key's state empty (an empty tally or queue), which an update extends as it
        would a new key's, moving the key to the end; ``last`` overwrites all three fields.
        A distinct key in sketch mode would stay in sketch mode: distinct stores are swept
        at once (``LAZY``). ``state``, ``_make_room``, ``read`` and ``add`` settle first, and
        the owner settles before it reads at a cutoff past ``_swept`` (a read there could
        empty a key the sweep keeps, which :meth:`drain` would then pop).

        Returns the first ``now`` whose cutoff passes ``cutoff``: ``now // g - n > cutoff``
        exactly when ``now >= (cutoff + n + 1) * g``."""
        self._swept = cutoff
        self._owed = True
        return (cutoff + self.n + 1) * self.g

    def drain(self, limit: int) -> int:
        """Pop at most ``limit`` keys of the owed sweep; the number popped (the sweep is no
        longer owed once a live key or no key leads). One by one: for a few keys, the C-speed
        run of :meth:`_sweep` costs more in iterator objects than it saves."""
        popped = self._pop_expired(self._swept, limit)
        if popped < limit or not self.keys:
            self._owed = False
        return popped

    def settle(self) -> None:
        """Pop every key the owed sweep still holds."""
        if self._owed:
            self._sweep(self._swept)

    def stale(self, state: Any) -> bool:
        """Whether a key's state has no bucket after the last sweep's cutoff (the key may be
        one an owed sweep has not popped yet)."""
        return self._newest(state) <= self._swept

    @staticmethod
    def _newest(state: Any) -> int:
        raise NotImplementedError

    def _moves(self, newest: int, idx: int) -> bool:
        """Whether an update in bucket ``idx`` moves a key whose newest bucket is ``newest``
        (``_NEVER``: none) to the back of the update order: when ``idx`` is in a later span."""
        return newest // self.span < idx // self.span

    def state(self) -> dict:
        """The last sweep's cutoff and ``[key, key_state]`` pairs in update order (keys as
        lists when they are pairs)."""
        self.settle()
        keys = [[_key_out(k), self._state_out(s)] for k, s in self.keys.items()]
        return {"swept": self._swept, "keys": keys}

    def restore(self, data: dict) -> None:
        """Replace the keys in place (compiled steps hold ``keys`` itself)."""
        self._swept = data["swept"]
        self._owed = False
        self.keys.clear()
        self.keys.update((_key_in(k), self._state_in(s)) for k, s in data["keys"])

    def _state_out(self, state: Any) -> Any:
        raise NotImplementedError

    def _state_in(self, data: Any) -> Any:
        raise NotImplementedError

    def _out(self, value: Any) -> Any:
        """Decimal amounts in 1e-18 units outgrow msgpack's 64-bit integers: as text."""
        return str(value) if self.scale != 1 else value

    def _in(self, value: Any) -> Any:
        return int(value) if self.scale != 1 else value


def drain_owed(queue: dict, now: int) -> None:
    """One event's share of the owed sweeps of ``queue`` (the stores of one pack that owe
    one, each -> the ``now`` from which it must settle, from :meth:`KeyedWindow.defer`),
    before the event reads any: a store whose cutoff at ``now`` passed its last sweep is
    settled, the others pop ``DRAIN`` keys between them, oldest debt first; a store that
    owes nothing more leaves the queue."""
    budget = DRAIN
    for store, due in list(queue.items()):
        if now >= due:
            store.settle()
        elif budget:
            budget -= store.drain(budget)
        if not store._owed:
            del queue[store]


class Pair(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """The key of a feature keyed by two fields (account and address ...): hashable and
    compared like a tuple of the two, but born untracked by the collector, which a tuple is
    not (a new key's tuple was visited by the next young collection)."""

    first: Any
    second: Any


def _key_out(key: Any) -> Any:
    return [key.first, key.second] if isinstance(key, Pair) else key


def _key_in(key: Any) -> Any:
    return Pair(*key) if isinstance(key, list) else key


class _Tally(msgspec.Struct, gc=False):
    """One key's count or sum: ``total`` over the live buckets, ``first`` and ``last`` the
    oldest and newest of them, ``amount`` the newest one's, ``older`` the others
    (``bucket -> amount``, ascending; ``None`` until a key has two). A key whose every bucket
    expired has ``total`` 0, ``first = _FAR`` and ``last = _NEVER``. ``gc=False``: see the
    module docstring."""

    total: Any
    first: int
    last: int
    amount: Any
    older: dict | None = None


def _push_tally(state: _Tally, idx: int, amount: Any) -> None:
    """Start bucket ``idx``, later than the newest (the total is the caller's)."""
    last = state.last
    if last == _NEVER:
        state.first = idx
    elif state.older is None:
        state.older = {last: state.amount}
    else:
        state.older[last] = state.amount
    state.last = idx
    state.amount = amount


def _insert_tally(state: _Tally, idx: int, amount: Any) -> None:
    """Fold ``amount`` into bucket ``idx``, older than the newest (a late event), keeping the
    older buckets ascending (the total is the caller's)."""
    older = state.older
    if older is None:
        state.older = {idx: amount}
    elif idx in older:
        older[idx] += amount
    elif not older or idx > next(reversed(older)):
        older[idx] = amount
    else:
        older[idx] = amount
        ordered = sorted(older.items())
        older.clear()
        older.update(ordered)
    if idx < state.first:
        state.first = idx


def _expire_tally(state: _Tally, cutoff: int) -> None:
    """Drop the buckets at or before ``cutoff`` (the leading ones), subtracting each from the
    total in bucket order."""
    total = state.total
    older = state.older
    first = state.last
    if older:
        expired = []
        for bucket, amount in older.items():
            if bucket > cutoff:
                first = bucket
                break
            total -= amount
            expired.append(bucket)
        for bucket in expired:
            del older[bucket]
    if first <= cutoff:  # the newest bucket too: nothing is left
        total -= state.amount
        state.last = _NEVER
        state.amount = 0
        first = _FAR
    state.first = first
    state.total = total


class CountWindow(KeyedWindow):
    """Number of events per key in the window. Per key: a :class:`_Tally`."""

    __slots__ = ()
    _NEWEST = attrgetter("last")

    def add(self, key: Any, value: Any, ts: int, now: int) -> None:
        g = self.g
        idx = ts // g
        cutoff = now // g - self.n
        if idx <= cutoff:
            return
        if self._owed:
            self.settle()
        self._fold(key, 1, idx, cutoff)

    def _fold(self, key: Any, amount: Any, idx: int, cutoff: int) -> None:
        """``add`` of ``amount`` for a bucket in the window, past the sweep settling."""
        keys = self.keys
        state = keys.get(key)
        if state is None:
            if len(keys) >= self.max_keys:
                self._make_room(cutoff)
            keys[key] = _Tally(0 + amount, idx, idx, amount)
        else:
            last = state.last
            if last == idx:
                state.amount += amount
            elif last > idx:
                _insert_tally(state, idx, amount)
            else:  # a newer bucket: the key moves to the back when it enters a new span
                if self._moves(last, idx):
                    keys.move_to_end(key)
                _push_tally(state, idx, amount)
            state.total += amount
        if cutoff > self._swept:
            self._sweep(cutoff)

    @staticmethod
    def _newest(state: _Tally) -> int:
        return state.last

    def read(self, key: Any, now: int) -> Any:
        if self._owed:
            self.settle()
        state = self.keys.get(key)
        if state is None:
            total = 0
        else:
            cutoff = now // self.g - self.n
            if state.first <= cutoff:
                _expire_tally(state, cutoff)
            total = state.total
        return total / self.scale if self.scale != 1 else total

    def _state_out(self, state: _Tally) -> Any:
        out = self._out
        pairs = [[idx, out(amount)] for idx, amount in (state.older or {}).items()]
        if state.last != _NEVER:
            pairs.append([state.last, out(state.amount)])
        return pairs

    def _state_in(self, data: Any) -> _Tally:
        pairs = [(idx, self._in(value)) for idx, value in data]
        if not pairs:
            return _Tally(0, _FAR, _NEVER, 0)
        last, amount = pairs[-1]
        total = sum(value for _, value in pairs)
        return _Tally(total, pairs[0][0], last, amount, dict(pairs[:-1]) or None)


class SumWindow(CountWindow):
    """Sum of a numeric field per key in the window (exact: integers, decimals in 1e-18).
    Per key: a :class:`_Tally` of the sums."""

    __slots__ = ()

    def add(self, key: Any, value: Any, ts: int, now: int) -> None:
        g = self.g
        idx = ts // g
        cutoff = now // g - self.n
        if idx <= cutoff:
            return
        if self._owed:
            self.settle()
        self._fold(key, value, idx, cutoff)


class _Queue(msgspec.Struct, gc=False):
    """One key's min / max: the monotone queue's oldest pair (``first``, ``best``: the
    window's extremum), its newest (``last``, ``worst``) and the pairs between them
    (``middle``: bucket -> value, ascending; ``None`` until a key has three). One pair has
    ``first == last``; an empty queue ``first = _FAR`` and ``last = _NEVER``. ``gc=False``:
    see the module docstring."""

    first: int
    last: int
    best: Any
    worst: Any
    middle: dict | None = None


def _queue_flat(state: _Queue) -> list:
    """The queue as ``[b0, v0, b1, v1, ...]``, oldest first."""
    if state.last == _NEVER:
        return []
    flat = [state.first, state.best]
    for pair in (state.middle or {}).items():
        flat += pair
    if state.last != state.first:
        flat += (state.last, state.worst)
    return flat


def _queue_set(state: _Queue, flat: list) -> None:
    """Make ``state`` the queue ``[b0, v0, b1, v1, ...]``."""
    if not flat:
        state.first, state.last, state.best, state.worst = _FAR, _NEVER, None, None
        state.middle = None
        return
    state.first, state.best, state.last, state.worst = flat[0], flat[1], flat[-2], flat[-1]
    state.middle = dict(zip(flat[2:-2:2], flat[3:-2:2], strict=True)) or None


def _expire_queue(state: _Queue, cutoff: int) -> None:
    """Drop the pairs at or before ``cutoff`` (the leading ones); the next becomes the
    oldest."""
    if state.last <= cutoff:
        _queue_set(state, [])
        return
    middle = state.middle
    if middle:
        expired = []
        for bucket, value in middle.items():
            if bucket > cutoff:
                for old in expired:
                    del middle[old]
                del middle[bucket]
                state.first = bucket
                state.best = value
                return
            expired.append(bucket)
        middle.clear()
    state.first = state.last
    state.best = state.worst


def _pop_newest(state: _Queue) -> None:
    """Drop the newest pair (one a newer value equals or beats)."""
    if state.middle:
        state.last, state.worst = state.middle.popitem()
    elif state.first != state.last:
        state.last = state.first
        state.worst = state.best
    else:
        _queue_set(state, [])


def _append_queue(state: _Queue, idx: int, value: Any) -> None:
    """Append ``(idx, value)`` unless the newest pair is that bucket's (which beats it: the
    caller dropped the pairs ``value`` beats)."""
    last = state.last
    if last == _NEVER:
        state.first = state.last = idx
        state.best = state.worst = value
    elif last != idx:
        if state.first != last:
            if state.middle is None:
                state.middle = {last: state.worst}
            else:
                state.middle[last] = state.worst
        state.last = idx
        state.worst = value


class ExtremumWindow(KeyedWindow):
    """Minimum or maximum of a numeric field per key. Per key: a :class:`_Queue` of
    ``(bucket, value)`` pairs, the buckets ascending, holding only the buckets whose
    extremum no later bucket's equals or beats (a monotone queue): the values strictly rise
    from the oldest pair for a minimum (fall for a maximum), so the oldest live pair holds
    the window's extremum.

    A bucket left out is never needed: while it is in the window, so is the later bucket
    that beats it. A read drops the expired pairs at the front and returns the first value
    (O(1)); an update at the newest bucket drops the pairs it beats from the back (amortized
    O(1)); a late event beaten by a later pair changes nothing, else it goes in its place and
    drops the earlier pairs it beats. For random values a key holds about ``ln(n)`` pairs
    instead of one per non-empty bucket. Standard sliding-window extremum (the "ascending
    minima" queue; see e.g. Lemire, *Streaming maximum-minimum filter using no more than
    three comparisons per element*, 2006)."""

    __slots__ = ("default", "lowest")
    _NEWEST = attrgetter("last")

    def __init__(self, g: int, n: int, max_keys: int, scale: int, pick, default: Any) -> None:
        super().__init__(g, n, max_keys, scale)
        self.lowest = pick is min  # a minimum (else a maximum)
        self.default = default

    def _beats(self, value: Any, other: Any) -> bool:
        """Whether ``value`` equals or beats ``other`` (a later pair that does so makes an
        earlier one useless)."""
        return value <= other if self.lowest else value >= other

    def add(self, key: Any, value: Any, ts: int, now: int) -> None:
        g = self.g
        idx = ts // g
        cutoff = now // g - self.n
        if idx <= cutoff:
            return
        if self._owed:
            self.settle()
        keys = self.keys
        state = keys.get(key)
        if state is None:
            if len(keys) >= self.max_keys:
                self._make_room(cutoff)
            keys[key] = _Queue(idx, idx, value, value)
        elif state.last > idx:
            self._insert(state, idx, value)
        else:
            if self._moves(state.last, idx):
                keys.move_to_end(key)
            while state.last != _NEVER and self._beats(value, state.worst):
                _pop_newest(state)
            _append_queue(state, idx, value)
        if cutoff > self._swept:
            self._sweep(cutoff)

    def _push(self, flat: list, idx: int, value: Any) -> None:
        """Fold ``value`` at bucket ``idx``, at or after the newest, into the queue
        ``[b0, v0, ...]``: drop the pairs it beats from the back, then append it unless its
        bucket's pair beats it."""
        while flat and self._beats(value, flat[-1]):
            del flat[-2:]
        if not flat or flat[-2] != idx:
            flat += (idx, value)

    def _insert(self, state: _Queue, idx: int, value: Any) -> None:
        """Fold ``value`` at bucket ``idx``, older than the newest (a late event)."""
        flat = _queue_flat(state)
        j = 0
        while flat[j] < idx:
            j += 2
        if self._beats(flat[j + 1], value):
            return  # a pair at or after idx equals or beats it (values are monotone)
        if flat[j] == idx:
            flat[j + 1] = value
        else:
            flat[j:j] = (idx, value)
        start = j
        while start and self._beats(value, flat[start - 1]):
            start -= 2
        del flat[start:j]
        _queue_set(state, flat)

    @staticmethod
    def _newest(state: _Queue) -> int:
        return state.last

    def read(self, key: Any, now: int) -> Any:
        if self._owed:
            self.settle()
        state = self.keys.get(key)
        if state is None:
            return self.default
        cutoff = now // self.g - self.n
        if state.first <= cutoff:
            _expire_queue(state, cutoff)
        if state.last == _NEVER:
            return self.default
        best = state.best
        return best / self.scale if self.scale != 1 else best

    def _state_out(self, state: _Queue) -> Any:
        out = self._out
        flat = _queue_flat(state)
        return [[flat[i], out(flat[i + 1])] for i in range(0, len(flat), 2)]

    def _state_in(self, data: Any) -> _Queue:
        """Pairs in bucket order, kept as a monotone queue (pairs a later one beats, as in a
        snapshot taken before stores kept only the others, are dropped)."""
        flat: list = []
        for idx, value in data:
            self._push(flat, idx, self._in(value))
        state = _Queue(_FAR, _NEVER, None, None)
        _queue_set(state, flat)
        return state


class _Last(msgspec.Struct, gc=False):
    """One key's last value: the event's bucket, time and value (``gc=False``: see the
    module docstring)."""

    idx: int
    ts: int
    value: Any


class LastWindow(KeyedWindow):
    """The value of the latest event (by event time, then arrival) per key in the window.
    Per key: a :class:`_Last`."""

    __slots__ = ("default",)
    _NEWEST = attrgetter("idx")

    def __init__(self, g: int, n: int, max_keys: int, scale: int, default: Any) -> None:
        super().__init__(g, n, max_keys, scale)
        self.default = default

    def add(self, key: Any, value: Any, ts: int, now: int) -> None:
        g = self.g
        idx = ts // g
        cutoff = now // g - self.n
        if idx <= cutoff:
            return
        if self._owed:
            self.settle()
        keys = self.keys
        state = keys.get(key)
        if state is None:
            if len(keys) >= self.max_keys:
                self._make_room(cutoff)
            keys[key] = _Last(idx, ts, value)
        else:
            if self._moves(state.idx, idx):
                keys.move_to_end(key)
            if ts >= state.ts:
                state.idx = idx
                state.ts = ts
                state.value = value
        if cutoff > self._swept:
            self._sweep(cutoff)

    @staticmethod
    def _newest(state: _Last) -> int:
        return state.idx

    def read(self, key: Any, now: int) -> Any:
        if self._owed:
            self.settle()
        state = self.keys.get(key)
        if state is None or state.idx <= now // self.g - self.n:
            return self.default
        value = state.value
        return value / self.scale if self.scale != 1 else value

    def _state_out(self, state: _Last) -> Any:
        return [state.idx, state.ts, self._out(state.value)]

    def _state_in(self, data: Any) -> _Last:
        return _Last(data[0], data[1], self._in(data[2]))


# One key's distinct values are a plain dict: its first two entries, under the sentinel keys
# ``_LO`` and ``_HI`` (never equal to a value: values are strings and integers), hold a lower
# bound of the oldest bucket and the newest bucket; the other entries map each value to its
# newest bucket, in ascending bucket order (a value seen again in a newer bucket is deleted
# and reinserted at the end, so expired values leave from the front). ``lo`` is exact after
# an eviction or a new value, lower when the values of the oldest bucket moved on, which
# only costs an eviction that finds nothing. An empty key has ``lo = _FAR`` and
# ``hi = _NEVER``. Sketch mode: ``lo = _SKETCHED`` (at or before every cutoff, so that a read
# takes the slow path), ``hi = _FAR`` (so that an update does) and the sketch under ``_SK``.
#
# One dict, not an ordered dict with a list of buckets, nor a struct around a dict: most keys
# of a store over a busy field (the accounts per IP address) hold one value, and each object
# of a key is a cache miss when the key is read. A dict of strings and integers is not
# tracked by the collector (see the module docstring); a key in sketch mode is, while it is.
_LO = object()
_HI = object()
_SK = object()
_SKETCHED = -(2**63)
_HEAD = 2  # the sentinel entries before the values


def _empty_distinct() -> dict:
    return {_LO: _FAR, _HI: _NEVER}


def _values(state: dict) -> Any:
    """The ``(value, bucket)`` items of an exact key, past its two sentinel entries."""
    items = iter(state.items())
    next(items)
    next(items)
    return items


def _distinct_count(state: dict, cutoff: int) -> int:
    """The number of distinct values of a key whose ``lo`` is at or before ``cutoff``: its
    expired values evicted, or its sketch's estimate."""
    if state[_LO] == _SKETCHED:
        sketch = state[_SK]
        sketch.evict(cutoff)
        return sketch.estimate()
    _evict_exact(state, cutoff)
    return len(state) - _HEAD


def _evict_exact(state: dict, cutoff: int) -> None:
    """Drop the values whose newest bucket is at or before ``cutoff`` (the leading run)."""
    expired = []
    for value, bucket in _values(state):
        if bucket > cutoff:
            state[_LO] = bucket
            break
        expired.append(value)
    else:
        state[_LO] = _FAR
        state[_HI] = _NEVER
    for value in expired:
        del state[value]


def _second(item: tuple) -> Any:
    return item[1]


def _late_exact(state: dict, idx: int) -> None:
    """A value arrived in bucket ``idx``, older than ``hi``: keep the values in bucket order
    (a stable sort: values of one bucket keep their order)."""
    lo = min(state[_LO], idx)
    hi = state[_HI]
    ordered = sorted(_values(state), key=_second)
    state.clear()
    state[_LO] = lo
    state[_HI] = hi
    state.update(ordered)


def _to_sketch(state: dict) -> None:
    """Switch a key beyond its exact limit to per-bucket HyperLogLog registers."""
    sketch = Sketch()
    for member, bucket_idx in _values(state):
        sketch.add(bucket_idx, member)
    state.clear()
    state[_LO] = _SKETCHED
    state[_HI] = _FAR
    state[_SK] = sketch


class DistinctWindow(KeyedWindow):
    """Number of distinct values of a field per key: exact up to ``exact_limit``, then a
    per-bucket HyperLogLog for that key (see the module docstring)."""

    __slots__ = ("exact_limit",)
    LAZY = False  # see KeyedWindow.defer

    def __init__(self, g: int, n: int, max_keys: int, exact_limit: int, scale: int = 1) -> None:
        super().__init__(g, n, max_keys, scale)  # scale: values are decimal amounts' units
        self.exact_limit = exact_limit

    @staticmethod
    def _newest(state: dict) -> int:
        if state[_LO] == _SKETCHED:
            return state[_SK].newest()
        return state[_HI]

    def add(self, key: Any, value: Any, ts: int, now: int) -> None:
        g = self.g
        idx = ts // g
        cutoff = now // g - self.n
        if idx <= cutoff:
            return
        keys = self.keys
        state = keys.get(key)
        if state is None:
            if len(keys) >= self.max_keys:
                self._make_room(cutoff)
            state = keys[key] = _empty_distinct()
            self._add_exact(state, idx, value)
        else:
            self._add_found(key, state, idx, value, cutoff)
        if cutoff > self._swept:
            self._sweep(cutoff)

    def _add_exact(self, state: dict, idx: int, value: Any) -> None:
        """Fold ``value`` into an exact key whose expired values are evicted."""
        previous = state.get(value)
        if previous is not None:
            if previous >= idx:
                return
            del state[value]
        state[value] = idx
        hi = state[_HI]
        if idx > hi:
            if hi == _NEVER:
                state[_LO] = idx
            state[_HI] = idx
        elif idx < hi:  # a late event: keep the values in bucket order
            _late_exact(state, idx)
        if len(state) - _HEAD > self.exact_limit:
            _to_sketch(state)

    def _add_found(self, key: Any, state: dict, idx: int, value: Any, cutoff: int) -> None:
        """``add`` for a key already in the store, lookup and sweep excluded. Expired values
        are evicted first, so that the key moves (or not) on its newest live bucket, as in the
        fused step."""
        if state[_LO] == _SKETCHED:
            self._add_sketch(key, state, idx, value, cutoff)
            return
        if state[_LO] <= cutoff:
            _evict_exact(state, cutoff)
        if self._moves(state[_HI], idx):
            self.keys.move_to_end(key)
        self._add_exact(state, idx, value)

    def _add_sketch(self, key: Any, state: dict, idx: int, value: Any, cutoff: int) -> None:
        """``add`` for a key in sketch mode, sweep excluded."""
        sketch = state[_SK]
        if self._moves(sketch.newest(), idx):
            self.keys.move_to_end(key)
        sketch.evict(cutoff)
        sketch.add(idx, value)

    def read(self, key: Any, now: int) -> int:
        state = self.keys.get(key)
        if state is None:
            return 0
        cutoff = now // self.g - self.n
        if state[_LO] <= cutoff:
            return _distinct_count(state, cutoff)
        return len(state) - _HEAD

    def _state_out(self, state: dict) -> Any:
        if state[_LO] == _SKETCHED:
            return {"sketch": state[_SK].state()}
        members: dict[int, list] = {}
        for value, idx in _values(state):
            members.setdefault(idx, []).append(value)
        out = self._out
        return {"exact": [[idx, [out(v) for v in sorted(members[idx])]] for idx in sorted(members)]}

    def _state_in(self, data: Any) -> dict:
        if "sketch" in data:
            return {_LO: _SKETCHED, _HI: _FAR, _SK: Sketch.restore(data["sketch"])}
        pairs = [(self._in(value), idx) for idx, members in data["exact"] for value in members]
        if not pairs:
            return _empty_distinct()
        buckets = [idx for _, idx in pairs]
        return {_LO: min(buckets), _HI: max(buckets), **dict(pairs)}
