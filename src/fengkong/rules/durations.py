"""Durations written as ``30s``, ``10m``, ``1h30m``, ``7d`` (or integer milliseconds)."""

from __future__ import annotations

import re

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

_UNITS = {"ms": 1, "s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY}
_PART = re.compile(r"(\d{1,9})(ms|s|m|h|d)")


def parse_duration(value: object) -> int:
    """Milliseconds in ``value``; raises ``ValueError`` with the reason when it is not one."""
    if isinstance(value, bool):
        raise ValueError("a duration is a text like '24h' or an integer of milliseconds")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("must be positive")
        return value
    if not isinstance(value, str) or not value or len(value) > 32:
        raise ValueError("a duration is a text like '24h' or an integer of milliseconds")
    total = 0
    position = 0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(value) or total <= 0:
        raise ValueError(f"{value!r} is not a duration like '30s', '10m', '1h30m' or '7d'")
    return total


def format_duration(ms: int) -> str:
    """The shortest text :func:`parse_duration` reads back as ``ms``."""
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = _UNITS[unit]
        if ms >= size:
            count, ms = divmod(ms, size)
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0ms"
