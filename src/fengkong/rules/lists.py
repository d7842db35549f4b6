"""Block, allow and grey lists of typed values, changed only by events.

A list is declared by a pack (name, kind, value kind); its entries are state of the rules
component and outlive pack versions, so a sanctions list is not emptied by a rule tweak.
Each entry keeps its reason, author, creation time (the event time of the change) and
expiry (0 for none). An entry is live while ``expires_ts == 0 or now < expires_ts``.
Compiled rules read :attr:`ListStore.live`, a ``value -> expiry`` dict per list that is
mutated in place and never replaced.
"""

from __future__ import annotations

import enum
import heapq
import ipaddress
import re

import msgspec

from fengkong.rules.schema import VALUE_KINDS

NEVER = 2**62  # the expiry recorded for an entry without one


class ListKind(enum.StrEnum):
    BLOCK = "block"
    ALLOW = "allow"
    GREY = "grey"


class Entry(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    value: str
    reason: str
    author: str
    created_ts: int
    expires_ts: int


_TOKEN = re.compile(r"[^\s\x00-\x1f]{1,256}")
_COUNTRY = re.compile(r"[A-Z]{2}")


def value_problem(value_kind: str, value: object) -> str:
    """Why ``value`` is not a valid value of ``value_kind``, or an empty string."""
    if not isinstance(value, str):
        return "a list value is a string"
    if value_kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return f"{value!r} is not an IP address"
        return ""
    if value_kind == "country":
        return "" if _COUNTRY.fullmatch(value) else f"{value!r} is not an ISO 3166 alpha-2 code"
    if value_kind not in VALUE_KINDS:
        return f"unknown value kind {value_kind!r}"
    return "" if _TOKEN.fullmatch(value) else f"{value!r}: 1-256 printable characters, no spaces"


class ListStore:
    """Entries of every list ever declared, with the live-membership view rules read."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {}
        self.value_kinds: dict[str, str] = {}
        self.live: dict[str, dict[str, int]] = {}
        self._expiries: dict[str, list[tuple[int, str]]] = {}

    def declare(self, name: str, value_kind: str) -> None:
        if name not in self.entries:
            self.entries[name] = {}
            self.live[name] = {}
            self._expiries[name] = []
        self.value_kinds[name] = value_kind

    def put(self, name: str, entry: Entry, now: int) -> None:
        """Add or replace an entry (validated by the caller)."""
        self.entries[name][entry.value] = entry
        expiry = entry.expires_ts or NEVER
        self.live[name][entry.value] = expiry
        if entry.expires_ts:
            heapq.heappush(self._expiries[name], (entry.expires_ts, entry.value))
        self.purge(name, now)

    def remove(self, name: str, value: str) -> bool:
        entry = self.entries[name].pop(value, None)
        self.live[name].pop(value, None)
        return entry is not None

    def purge(self, name: str, now: int) -> None:
        """Drop entries of ``name`` that expired at or before ``now``."""
        heap = self._expiries[name]
        entries, live = self.entries[name], self.live[name]
        while heap and heap[0][0] <= now:
            expires_ts, value = heapq.heappop(heap)
            entry = entries.get(value)
            if entry is not None and entry.expires_ts == expires_ts:
                del entries[value]
                del live[value]

    def is_live(self, name: str, value: str, now: int) -> bool:
        return self.live.get(name, {}).get(value, -1) > now

    def state(self) -> list:
        return [
            [
                name,
                self.value_kinds[name],
                [self.entries[name][v] for v in sorted(self.entries[name])],
            ]
            for name in sorted(self.entries)
        ]

    def restore(self, data: list) -> None:
        self.__init__()
        for name, value_kind, entries in data:
            self.declare(name, value_kind)
            for raw in entries:
                entry = msgspec.convert(raw, Entry)
                self.entries[name][entry.value] = entry
                self.live[name][entry.value] = entry.expires_ts or NEVER
                if entry.expires_ts:
                    self._expiries[name].append((entry.expires_ts, entry.value))
            heapq.heapify(self._expiries[name])
