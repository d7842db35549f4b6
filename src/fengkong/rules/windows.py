"""Keyed sliding event-time windows: count, sum, min, max, distinct count and last value.

A window of ``n`` buckets of ``g`` milliseconds covers, at time ``now``, the events whose
bucket ``ts // g`` lies in ``(now // g - n, now // g]``: between ``n*g - g`` and ``n*g`` of
history. ``now`` is the component's clock (the largest event time seen), so a late event is
counted in its own bucket while that bucket is in the window, and dropped once it is not.

Memory per feature (documented bound, see ``docs/rules.md``):

* count / sum / min / max: one ``[bucket, value]`` pair per non-empty bucket per live key,
  at most ``n`` per key; a running total makes count and sum reads O(1) amortized, min and
  max reads are O(live buckets);
* last: one ``(bucket, ts, value)`` per live key;
* distinct: exact (a value -> newest-bucket map and one set per bucket) while a key holds at
  most ``exact_limit`` distinct values; beyond that the key switches, for as long as it stays
  live, to per-bucket HyperLogLog registers (:mod:`fengkong.rules.sketch`), 256 bytes per
  non-empty bucket, standard error about 6.5 %;
* keys: at most ``max_keys`` per feature; a key whose newest bucket left the window is
  dropped, and beyond ``max_keys`` the key whose newest bucket is oldest goes first.

State is plain data in a deterministic order (keys in update order, buckets ascending,
distinct values sorted), so :meth:`KeyedWindow.state` / :meth:`KeyedWindow.restore`
reproduce the store exactly.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from typing import Any

from fengkong.rules.sketch import Sketch

DECIMAL_SCALE = 10**18  # decimal amounts are summed exactly as integers of 1e-18 units


class KeyedWindow:
    """One feature's windows for every key. Subclasses keep per-key state."""

    __slots__ = ("_swept", "g", "keys", "max_keys", "n", "scale")

    def __init__(self, g: int, n: int, max_keys: int, scale: int) -> None:
        self.g = g
        self.n = n
        self.max_keys = max_keys
        self.scale = scale  # 1 for integers and strings, DECIMAL_SCALE for decimal amounts
        self.keys: dict[Any, Any] = {}
        self._swept = -(2**62)

    # --- shared key bookkeeping -----------------------------------------------------------

    def add(self, key: Any, value: Any, ts: int, now: int) -> None:
        """Fold one event's ``value`` (ignored by count) at event time ``ts`` into ``key``."""
        g = self.g
        cutoff = now // g - self.n
        idx = ts // g
        if idx <= cutoff:
            return
        keys = self.keys
        state = keys.get(key)
        if state is None:
            if len(keys) >= self.max_keys:
                self._sweep(cutoff)
                if len(keys) >= self.max_keys:
                    del keys[next(iter(keys))]
            state = keys[key] = self._new(idx)
        elif idx > self._newest(state):
            keys[key] = keys.pop(key)  # keys stay ordered by their newest bucket
        self._add(state, idx, ts, value, cutoff)
        if cutoff > self._swept:
            self._sweep(cutoff)

    def _sweep(self, cutoff: int) -> None:
        """Drop keys, oldest update first, whose newest bucket has left the window."""
        self._swept = cutoff
        keys = self.keys
        while keys:
            key = next(iter(keys))
            if self._newest(keys[key]) > cutoff:
                break
            del keys[key]

    # --- per-aggregation hooks ------------------------------------------------------------

    def _new(self, idx: int) -> Any:
        raise NotImplementedError

    def _newest(self, state: Any) -> int:
        raise NotImplementedError

    def _add(self, state: Any, idx: int, ts: int, value: Any, cutoff: int) -> None:
        raise NotImplementedError

    def read(self, key: Any, now: int) -> Any:
        raise NotImplementedError

    def state(self) -> dict:
        """The last sweep's cutoff and ``[key, key_state]`` pairs in update order (keys as
        lists when they are pairs)."""
        keys = [[_key_out(k), self._state_out(s)] for k, s in self.keys.items()]
        return {"swept": self._swept, "keys": keys}

    def restore(self, data: dict) -> None:
        self._swept = data["swept"]
        self.keys = {_key_in(k): self._state_in(s) for k, s in data["keys"]}

    def _state_out(self, state: Any) -> Any:
        raise NotImplementedError

    def _state_in(self, data: Any) -> Any:
        raise NotImplementedError

    def _out(self, value: Any) -> Any:
        """Decimal amounts in 1e-18 units outgrow msgpack's 64-bit integers: as text."""
        return str(value) if self.scale != 1 else value

    def _in(self, value: Any) -> Any:
        return int(value) if self.scale != 1 else value


def _key_out(key: Any) -> Any:
    return list(key) if isinstance(key, tuple) else key


def _key_in(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


class _Buckets:
    """Ascending ``[bucket, value]`` pairs and their running total."""

    __slots__ = ("items", "total")

    def __init__(self, items: deque, total: Any) -> None:
        self.items = items
        self.total = total


class CountWindow(KeyedWindow):
    """Number of events per key in the window."""

    __slots__ = ()

    def _new(self, idx: int) -> _Buckets:
        return _Buckets(deque(), 0)

    def _newest(self, state: _Buckets) -> int:
        return state.items[-1][0] if state.items else -(2**62)

    def _increment(self, value: Any) -> Any:
        return 1

    def _add(self, state: _Buckets, idx: int, ts: int, value: Any, cutoff: int) -> None:
        amount = self._increment(value)
        items = state.items
        if items and items[-1][0] == idx:
            items[-1][1] += amount
        elif not items or items[-1][0] < idx:
            items.append([idx, amount])
        else:
            for pair in items:
                if pair[0] == idx:
                    pair[1] += amount
                    break
            else:
                insort(items, [idx, amount])
        state.total += amount

    def _current(self, key: Any, now: int) -> _Buckets | None:
        state = self.keys.get(key)
        if state is None:
            return None
        items = state.items
        cutoff = now // self.g - self.n
        while items and items[0][0] <= cutoff:
            state.total -= items.popleft()[1]
        return state

    def read(self, key: Any, now: int) -> Any:
        state = self._current(key, now)
        return 0 if state is None else state.total

    def _state_out(self, state: _Buckets) -> Any:
        return [[idx, self._out(value)] for idx, value in state.items]

    def _state_in(self, data: Any) -> _Buckets:
        items = deque([[idx, self._in(value)] for idx, value in data])
        return _Buckets(items, sum(pair[1] for pair in items))


class SumWindow(CountWindow):
    """Sum of a numeric field per key in the window (exact: integers, decimals in 1e-18)."""

    __slots__ = ()

    def _increment(self, value: Any) -> Any:
        return value

    def read(self, key: Any, now: int) -> Any:
        state = self._current(key, now)
        total = 0 if state is None else state.total
        return total / self.scale if self.scale != 1 else total


class ExtremumWindow(KeyedWindow):
    """Minimum or maximum of a numeric field per key: one extremum per bucket."""

    __slots__ = ("default", "pick")

    def __init__(self, g: int, n: int, max_keys: int, scale: int, pick, default: Any) -> None:
        super().__init__(g, n, max_keys, scale)
        self.pick = pick  # the builtin min or max
        self.default = default

    def _new(self, idx: int) -> deque:
        return deque()

    def _newest(self, state: deque) -> int:
        return state[-1][0] if state else -(2**62)

    def _add(self, state: deque, idx: int, ts: int, value: Any, cutoff: int) -> None:
        pick = self.pick
        if state and state[-1][0] == idx:
            state[-1][1] = pick(state[-1][1], value)
        elif not state or state[-1][0] < idx:
            state.append([idx, value])
        else:
            for pair in state:
                if pair[0] == idx:
                    pair[1] = pick(pair[1], value)
                    break
            else:
                insort(state, [idx, value])

    def read(self, key: Any, now: int) -> Any:
        state = self.keys.get(key)
        if state is None:
            return self.default
        cutoff = now // self.g - self.n
        while state and state[0][0] <= cutoff:
            state.popleft()
        if not state:
            return self.default
        best = self.pick(pair[1] for pair in state)
        return best / self.scale if self.scale != 1 else best

    def _state_out(self, state: deque) -> Any:
        return [[idx, self._out(value)] for idx, value in state]

    def _state_in(self, data: Any) -> deque:
        return deque([idx, self._in(value)] for idx, value in data)


class LastWindow(KeyedWindow):
    """The value of the latest event (by event time, then arrival) per key in the window."""

    __slots__ = ("default",)

    def __init__(self, g: int, n: int, max_keys: int, scale: int, default: Any) -> None:
        super().__init__(g, n, max_keys, scale)
        self.default = default

    def _new(self, idx: int) -> list:
        return [idx, -(2**62), self.default]

    def _newest(self, state: list) -> int:
        return state[0]

    def _add(self, state: list, idx: int, ts: int, value: Any, cutoff: int) -> None:
        if ts >= state[1]:
            state[0], state[1], state[2] = idx, ts, value

    def read(self, key: Any, now: int) -> Any:
        state = self.keys.get(key)
        if state is None or state[0] <= now // self.g - self.n:
            return self.default
        value = state[2]
        return value / self.scale if self.scale != 1 else value

    def _state_out(self, state: list) -> Any:
        return [state[0], state[1], self._out(state[2])]

    def _state_in(self, data: Any) -> list:
        return [data[0], data[1], self._in(data[2])]


class _Distinct:
    """Exact: ``latest`` value -> newest bucket, ``sets`` bucket -> values whose newest bucket
    it is, ``order`` the buckets ascending. Sketch mode: ``sketch`` replaces all three."""

    __slots__ = ("latest", "order", "sets", "sketch")

    def __init__(self) -> None:
        self.latest: dict[Any, int] = {}
        self.sets: dict[int, set] = {}
        self.order: deque[int] = deque()
        self.sketch: Sketch | None = None


class DistinctWindow(KeyedWindow):
    """Number of distinct values of a field per key: exact up to ``exact_limit``, then a
    per-bucket HyperLogLog for that key (see the module docstring)."""

    __slots__ = ("exact_limit",)

    def __init__(self, g: int, n: int, max_keys: int, exact_limit: int) -> None:
        super().__init__(g, n, max_keys, 1)
        self.exact_limit = exact_limit

    def _new(self, idx: int) -> _Distinct:
        return _Distinct()

    def _newest(self, state: _Distinct) -> int:
        if state.sketch is not None:
            return state.sketch.newest()
        return state.order[-1] if state.order else -(2**62)

    def _evict(self, state: _Distinct, cutoff: int) -> None:
        if state.sketch is not None:
            state.sketch.evict(cutoff)
            return
        order, sets, latest = state.order, state.sets, state.latest
        while order and order[0] <= cutoff:
            for value in sets.pop(order.popleft()):
                del latest[value]

    def _add(self, state: _Distinct, idx: int, ts: int, value: Any, cutoff: int) -> None:
        self._evict(state, cutoff)
        if state.sketch is not None:
            state.sketch.add(idx, value)
            return
        previous = state.latest.get(value)
        if previous is not None:
            if previous >= idx:
                return
            state.sets[previous].discard(value)
        state.latest[value] = idx
        bucket = state.sets.get(idx)
        if bucket is None:
            bucket = state.sets[idx] = set()
            if not state.order or state.order[-1] < idx:
                state.order.append(idx)
            else:
                insort(state.order, idx)
        bucket.add(value)
        if len(state.latest) > self.exact_limit:
            sketch = Sketch()
            for bucket_idx in state.order:
                for member in state.sets[bucket_idx]:
                    sketch.add(bucket_idx, member)
            state.sketch = sketch
            state.latest, state.sets, state.order = {}, {}, deque()

    def read(self, key: Any, now: int) -> int:
        state = self.keys.get(key)
        if state is None:
            return 0
        self._evict(state, now // self.g - self.n)
        if state.sketch is not None:
            return state.sketch.estimate()
        return len(state.latest)

    def _state_out(self, state: _Distinct) -> Any:
        if state.sketch is not None:
            return {"sketch": state.sketch.state()}
        return {"exact": [[idx, sorted(state.sets[idx])] for idx in state.order]}

    def _state_in(self, data: Any) -> _Distinct:
        state = _Distinct()
        if "sketch" in data:
            state.sketch = Sketch.restore(data["sketch"])
            return state
        for idx, values in data["exact"]:
            state.order.append(idx)
            state.sets[idx] = set(values)
            for value in values:
                state.latest[value] = idx
        return state
