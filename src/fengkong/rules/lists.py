"""Block, allow and grey lists of typed values, changed only by events.

A list is declared by a pack (name, kind, value kind); its entries are state of the rules
component and outlive pack versions, so a sanctions list is not emptied by a rule tweak.
Each entry keeps its reason, author, creation time (the event time of the change) and
expiry (0 for none). An entry is live while ``expires_ts == 0 or now < expires_ts``.
Compiled rules read :attr:`ListStore.live`, a ``value -> expiry`` dict per list that is
mutated in place and never replaced.

An ``ip`` list holds addresses and networks in CIDR notation (``203.0.113.0/24``,
``2001:db8::/32``), each kept in its canonical text (``2001:DB8::0001`` is ``2001:db8::1``;
a network with host bits set is refused), so that an entry is found, replaced and removed
whichever way it was written. Networks live apart (:class:`IpRanges`: per IP version and
prefix length, a ``network number -> expiry`` dict); :func:`ip_member` tests an address
against the exact entries (one lookup: the common case) and then against each prefix length
the list holds, one lookup each. An IPv4-mapped IPv6 address (``::ffff:203.0.113.7``) is
also tested as the IPv4 address it maps.
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


class IpRanges:
    """The network entries of one ``ip`` list: ``tables[(version, prefixlen)]`` maps a
    network's number (its address shifted right by the host bits) to the entry's expiry."""

    __slots__ = ("tables",)

    def __init__(self) -> None:
        self.tables: dict[tuple[int, int], dict[int, int]] = {}

    def put(self, network: str, expiry: int) -> None:
        key, number = _network_slot(network)
        self.tables.setdefault(key, {})[number] = expiry

    def remove(self, network: str) -> None:
        key, number = _network_slot(network)
        table = self.tables.get(key)
        if table is not None:
            table.pop(number, None)
            if not table:
                del self.tables[key]

    def contains(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, now: int) -> bool:
        """Whether a live network holds ``address``."""
        number = int(address)
        bits = address.max_prefixlen
        version = address.version
        for (table_version, prefixlen), table in self.tables.items():
            if table_version == version and table.get(number >> (bits - prefixlen), -1) > now:
                return True
        return False


def _network_slot(network: str) -> tuple[tuple[int, int], int]:
    parsed = ipaddress.ip_network(network)
    host_bits = parsed.max_prefixlen - parsed.prefixlen
    return (parsed.version, parsed.prefixlen), int(parsed.network_address) >> host_bits


def ip_member(live: dict[str, int], ranges: IpRanges, value: str, now: int) -> bool:
    """Whether the address ``value`` is on an ``ip`` list: its exact entry (``live``, the
    list's live view) or a network of ``ranges``. A text that is not an address is on no
    list. A valid IPv4 text is canonical, so with no networks an exact miss is the answer."""
    if live.get(value, -1) > now:
        return True
    if not ranges.tables and ":" not in value:
        return False
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    canonical = str(address)
    if canonical != value and live.get(canonical, -1) > now:
        return True
    if ranges.contains(address, now):
        return True
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped is not None and (live.get(str(mapped), -1) > now or ranges.contains(mapped, now))


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
            if "/" in value:
                ipaddress.ip_network(value)  # strict: no host bits set
            else:
                ipaddress.ip_address(value)
        except ValueError as exc:
            return f"{value!r} is not an IP address or network ({exc})"
        return ""
    if value_kind == "country":
        return "" if _COUNTRY.fullmatch(value) else f"{value!r} is not an ISO 3166 alpha-2 code"
    if value_kind not in VALUE_KINDS:
        return f"unknown value kind {value_kind!r}"
    return "" if _TOKEN.fullmatch(value) else f"{value!r}: 1-256 printable characters, no spaces"


def canonical(value_kind: str, value: str) -> str:
    """The text an entry of a valid ``value`` is kept under (see the module docstring)."""
    if value_kind != "ip":
        return value
    if "/" in value:
        return str(ipaddress.ip_network(value))
    return str(ipaddress.ip_address(value))


class ListStore:
    """Entries of every list ever declared, with the live-membership views rules read:
    ``live`` (exact entries) and, for ``ip`` lists, ``ranges`` (networks)."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {}
        self.value_kinds: dict[str, str] = {}
        self.live: dict[str, dict[str, int]] = {}
        self.ranges: dict[str, IpRanges] = {}
        self._expiries: dict[str, list[tuple[int, str]]] = {}

    def declare(self, name: str, value_kind: str) -> None:
        if name not in self.entries:
            self.entries[name] = {}
            self.live[name] = {}
            self.ranges[name] = IpRanges()
            self._expiries[name] = []
        self.value_kinds[name] = value_kind

    def put(self, name: str, entry: Entry, now: int) -> None:
        """Add or replace an entry (validated, its value canonical: see :func:`canonical`)."""
        self.entries[name][entry.value] = entry
        self._show(name, entry)
        if entry.expires_ts:
            heapq.heappush(self._expiries[name], (entry.expires_ts, entry.value))
        self.purge(name, now)

    def _show(self, name: str, entry: Entry) -> None:
        """Make ``entry`` visible to rules: a network among the ranges, else exact."""
        expiry = entry.expires_ts or NEVER
        if "/" in entry.value and self.value_kinds[name] == "ip":
            self.ranges[name].put(entry.value, expiry)
        else:
            self.live[name][entry.value] = expiry

    def _hide(self, name: str, value: str) -> None:
        if "/" in value and self.value_kinds[name] == "ip":
            self.ranges[name].remove(value)
        else:
            self.live[name].pop(value, None)

    def remove(self, name: str, value: str) -> bool:
        entry = self.entries[name].pop(value, None)
        if entry is not None:
            self._hide(name, value)
        return entry is not None

    def purge(self, name: str, now: int) -> None:
        """Drop entries of ``name`` that expired at or before ``now``."""
        heap = self._expiries[name]
        entries = self.entries[name]
        while heap and heap[0][0] <= now:
            expires_ts, value = heapq.heappop(heap)
            entry = entries.get(value)
            if entry is not None and entry.expires_ts == expires_ts:
                del entries[value]
                self._hide(name, value)

    def is_live(self, name: str, value: str, now: int) -> bool:
        live = self.live.get(name, {})
        if self.value_kinds.get(name) == "ip":
            return ip_member(live, self.ranges[name], value, now)
        return live.get(value, -1) > now

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
                self._show(name, entry)
                if entry.expires_ts:
                    self._expiries[name].append((entry.expires_ts, entry.value))
            heapq.heapify(self._expiries[name])
