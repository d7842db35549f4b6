"""The contract between the engine and the stateful components it composes.

A component owns part of the state and the event kinds that change it:

* ``handlers()`` maps each event kind it *owns* to a function ``handler(event) -> outputs``.
  A handler validates everything first and raises :class:`RejectError` before touching any
  state; after its first mutation it must not fail. Exactly one component owns a kind.
* ``observers()`` maps event kinds to functions called after the owner accepted the event
  (in component order). Observers keep derived views in step (indexes, feature windows) and
  must not reject; an observer may return output events (or None), which the engine appends
  to the event's outputs.
* ``canonical_state()`` returns the component's whole state as msgspec-encodable builtins and
  Structs in a deterministic order (sorted keys, never a set). It is both the snapshot body
  and the input of the state hash. ``restore_state(data)`` rebuilds the component from the
  msgpack-decoded form of that value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from fengkong.model.events import Event, Output, RejectReason

Handler = Callable[[Any], list[Output]]
Observer = Callable[[Any], list[Output] | None]


class RejectError(Exception):
    """Raised by a handler, before any state change, to refuse an event."""

    __slots__ = ("field", "message", "reason", "value")

    def __init__(self, reason: RejectReason, field: str, value: object, message: str) -> None:
        super().__init__(f"{reason.value}: {field}={value!r}: {message}")
        self.reason = reason
        self.field = field
        self.value = value
        self.message = message


class Component(Protocol):
    name: str

    def handlers(self) -> Mapping[type[Event], Handler]: ...

    def observers(self) -> Mapping[type[Event], Observer]: ...

    def canonical_state(self) -> Any: ...

    def restore_state(self, data: Any) -> None: ...
