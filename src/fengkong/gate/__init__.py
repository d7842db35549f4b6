"""The pre-trade gate (docs/gate.md): order requests decided cheapest check first, fail closed,
with margin or balance reserved on acceptance."""

from fengkong.gate.component import Gate

__all__ = ["Gate"]
