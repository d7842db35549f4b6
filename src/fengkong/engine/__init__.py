"""The deterministic core engine (see :mod:`fengkong.engine.core`)."""

from fengkong.engine.component import Component, RejectError
from fengkong.engine.core import Engine, SequenceError, SnapshotError, default_components

__all__ = [
    "Component",
    "Engine",
    "RejectError",
    "SequenceError",
    "SnapshotError",
    "default_components",
]
