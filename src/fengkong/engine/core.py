"""The deterministic core: ``(state, event) -> (state', outputs)``.

The engine admits each input event in sequence order, drops re-delivered ids, routes the
event to the component that owns its kind and then to the observers of that kind. It reads
no clock, no randomness and no I/O: the same log gives the same outputs and the same
:meth:`Engine.state_hash` on every machine and under every ``PYTHONHASHSEED``.

Admission, in order:

1. an id seen within the last ``dedupe_window`` admitted events is a no-op answered with a
   :class:`~fengkong.model.events.Duplicate` output, whatever its ``seq``;
2. otherwise ``seq`` must be exactly the last admitted ``seq + 1``; anything else raises
   :class:`SequenceError` (input was lost or reordered) and changes nothing;
3. the owner handler either applies the event or refuses it with a
   :class:`~fengkong.model.events.Rejected` output and no state change. A refused event still
   consumes its sequence number and its id: re-delivering it is a duplicate;
4. after an accepted event, the observers of its kind run in component order; what they
   return (a rules decision on a fill, say) is appended to the outputs.

The log position (last ``seq`` and the id window) is part of the snapshot but not of the
state hash, so that a refused or duplicate event leaves the hash unchanged.
"""

from __future__ import annotations

import hashlib
import importlib
from collections import deque
from collections.abc import Sequence
from typing import Any

import msgspec

from fengkong.engine.component import Component, Handler, Observer, RejectError
from fengkong.model.events import Duplicate, Event, Output, Rejected, RejectReason

SNAPSHOT_FORMAT = "fengkong-engine-snapshot"
SNAPSHOT_VERSION = 1
DEFAULT_DEDUPE_WINDOW = 1_000_000

_encoder = msgspec.msgpack.Encoder(order="deterministic")
_decoder = msgspec.msgpack.Decoder()


class SequenceError(Exception):
    """An input event out of order or after a gap: input was lost, nothing was applied."""

    def __init__(self, expected: int, got: int, event_id: str) -> None:
        kind = "gap" if got > expected else "stale or reordered"
        super().__init__(f"seq={got} (id={event_id!r}): expected {expected} ({kind})")
        self.expected = expected
        self.got = got
        self.event_id = event_id


class SnapshotError(ValueError):
    """Bytes that are not an engine snapshot of a version this build reads."""


# the modules that define the default components' input events (see register_event_kinds)
EVENT_MODULES = (
    "fengkong.model.events",
    "fengkong.ledger.loans",
    "fengkong.market.events",
    "fengkong.gate.events",
    "fengkong.liquidation.events",
    "fengkong.rules.events",
)


def register_event_kinds() -> None:
    """Import the event modules of every default component, so that every kind the embedded
    engine accepts is registered (event decoders, rule packs' ``on``) in a process that builds
    no engine, such as ``fengkong rules check`` or a backtest. A test keeps this list equal
    to what :func:`default_components` registers."""
    for name in EVENT_MODULES:
        importlib.import_module(name)


def default_components() -> list[Component]:
    """The components of the embedded default engine, in processing order."""
    from fengkong.gate import Gate
    from fengkong.ledger.ledger import Ledger
    from fengkong.liquidation.component import LiquidationComponent
    from fengkong.market.component import MarketComponent
    from fengkong.rules.component import RulesComponent

    ledger = Ledger()
    market = MarketComponent(ledger)
    gate = Gate(ledger, market)
    # rules last: it observes every event kind registered by the time it is built
    return [ledger, market, gate, LiquidationComponent(ledger, market, gate), RulesComponent()]


class Engine:
    """Single-writer state machine over the registered components (see module docstring)."""

    def __init__(
        self,
        components: Sequence[Component] | None = None,
        *,
        dedupe_window: int = DEFAULT_DEDUPE_WINDOW,
    ) -> None:
        if dedupe_window < 1:
            raise ValueError(f"dedupe_window={dedupe_window!r}: must be at least 1")
        self.components: list[Component] = list(
            default_components() if components is None else components
        )
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError(f"components={names!r}: names must be unique")
        self._owners: dict[type[Event], Handler] = {}
        self._observers: dict[type[Event], list[Observer]] = {}
        for component in self.components:
            for kind, handler in component.handlers().items():
                if kind in self._owners:
                    raise ValueError(f"event kind {kind.__name__} has two owners")
                self._owners[kind] = handler
            for kind, observer in component.observers().items():
                self._observers.setdefault(kind, []).append(observer)
        self.dedupe_window = dedupe_window
        self.last_seq = 0
        self._recent_ids: deque[str] = deque()
        self._seen: set[str] = set()

    def component(self, name: str) -> Any:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(f"component={name!r}: not in this engine")

    # --- processing -----------------------------------------------------------------------

    def admit(self, event: Event) -> bool:
        """True if ``event`` is new and next in sequence, False if it is a duplicate.

        Raises :class:`SequenceError` otherwise. Changes nothing.
        """
        if event.id in self._seen:
            return False
        if event.seq != self.last_seq + 1:
            raise SequenceError(self.last_seq + 1, event.seq, event.id)
        return True

    def process(self, event: Event) -> list[Output]:
        """Admit and apply one event; see the module docstring for the rules."""
        event_id = event.id
        seen = self._seen
        if event_id in seen:
            return [Duplicate(seq=event.seq, id=event_id)]
        seq = event.seq
        if seq != self.last_seq + 1:
            raise SequenceError(self.last_seq + 1, seq, event_id)
        self.last_seq = seq
        seen.add(event_id)
        recent = self._recent_ids
        recent.append(event_id)
        if len(recent) > self.dedupe_window:
            seen.discard(recent.popleft())
        kind = type(event)
        try:
            outputs = self._owners.get(kind, _unhandled)(event)
        except RejectError as refusal:
            return [_rejected(event, refusal.reason, refusal.field, refusal.value, refusal.message)]
        observers = self._observers.get(kind)
        if observers:
            for observer in observers:
                produced = observer(event)
                if produced:
                    outputs.extend(produced)
        return outputs

    # --- state ----------------------------------------------------------------------------

    def state_hash(self) -> str:
        """SHA-256 of the canonical msgpack encoding of every component's state."""
        body = [[c.name, c.canonical_state()] for c in self.components]
        return hashlib.sha256(_encoder.encode(body)).hexdigest()

    def snapshot(self) -> bytes:
        """The whole engine (component states and log position) as versioned msgpack."""
        return _encoder.encode(
            {
                "format": SNAPSHOT_FORMAT,
                "version": SNAPSHOT_VERSION,
                "last_seq": self.last_seq,
                "dedupe_window": self.dedupe_window,
                "recent_ids": list(self._recent_ids),
                "components": [[c.name, c.canonical_state()] for c in self.components],
            }
        )

    @classmethod
    def restore(cls, data: bytes, components: Sequence[Component] | None = None) -> Engine:
        """Rebuild an engine from :meth:`snapshot` bytes (fresh components, then state)."""
        try:
            body = _decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise SnapshotError(f"snapshot: not msgpack ({exc})") from exc
        if not isinstance(body, dict) or body.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError("snapshot: not an engine snapshot")
        if body.get("version") != SNAPSHOT_VERSION:
            raise SnapshotError(
                f"snapshot.version={body.get('version')!r}: this build reads {SNAPSHOT_VERSION}"
            )
        engine = cls(components, dedupe_window=body["dedupe_window"])
        states = dict(body["components"])
        for component in engine.components:
            if component.name not in states:
                raise SnapshotError(f"snapshot.components: no state for {component.name!r}")
            component.restore_state(states[component.name])
        engine.last_seq = body["last_seq"]
        engine._recent_ids = deque(body["recent_ids"])
        engine._seen = set(engine._recent_ids)
        return engine


def _unhandled(event: Event) -> list[Output]:
    """The handler of a kind no component owns: refuse it."""
    raise RejectError(RejectReason.UNHANDLED_EVENT, "type", type(event).__name__, "")


def _rejected(
    event: Event, reason: RejectReason, field: str, value: object, message: str
) -> Rejected:
    return Rejected(
        seq=event.seq,
        id=event.id,
        event_type=type(event).__name__,
        reason=reason,
        field=field,
        value=str(value),
        message=message,
    )
