"""Append-only event journal: length-prefixed, checksummed msgpack records.

File layout: an 8-byte header ``b"FKJ1"`` + ``u32`` format version, then records, each
``u32 length | u32 crc32(payload) | payload`` (little-endian), where ``payload`` is the
msgspec msgpack encoding of one tagged input event.

Durability (:class:`Durability`):

* ``always``: every record is written and ``fsync``-ed before :meth:`JournalWriter.append`
  returns; an appended event is acknowledged and survives a crash of the process or machine.
* ``group``: records are buffered and written + ``fsync``-ed together every ``group_records``
  records or ``group_ms`` milliseconds (group commit); :attr:`JournalWriter.durable_seq` says
  which events are acknowledged. Unacknowledged records may be lost.
* ``os``: every record is written to the kernel at once and never ``fsync``-ed; it survives a
  process crash but not necessarily a power loss.

On open, the records are scanned; a torn or corrupt tail (a short header, a short payload, a
length beyond :data:`MAX_RECORD`, a checksum mismatch) is reported as :class:`TornTail`,
copied aside to ``<journal>.torn-<offset>`` for inspection, and truncated: it is never read
as data.
"""

from __future__ import annotations

import enum
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgspec

from fengkong.model.events import Event, msgpack_event_decoder

MAGIC = b"FKJ1"
FORMAT_VERSION = 1
HEADER = MAGIC + struct.pack("<I", FORMAT_VERSION)
RECORD_HEADER = struct.Struct("<II")
MAX_RECORD = 16 * 1024 * 1024

_encoder = msgspec.msgpack.Encoder()


class Durability(enum.StrEnum):
    ALWAYS = "always"
    GROUP = "group"
    OS = "os"


class JournalError(Exception):
    """A journal that cannot be used: wrong header, or a valid record that does not decode."""


class TornTail(msgspec.Struct, frozen=True):
    """What was cut off the end of a journal on open."""

    offset: int
    dropped_bytes: int
    reason: str
    quarantine: str | None = None


class ScanResult(msgspec.Struct, frozen=True):
    events: list[Event]
    valid_bytes: int
    torn: TornTail | None


def encode_record(event: Event) -> bytes:
    """``u32 length | u32 crc32 | msgpack payload`` of one event."""
    payload = _encoder.encode(event)
    return RECORD_HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _frames(data: bytes) -> Iterator[tuple[int, bytes | None, str]]:
    """Yield ``(offset, payload, "")`` per valid record, then ``(offset, None, reason)`` if
    the data ends in a torn or corrupt record."""
    if not data.startswith(HEADER):
        raise JournalError(f"journal header={data[:8]!r}: expected {HEADER!r}")
    offset = len(HEADER)
    end = len(data)
    while offset < end:
        if end - offset < RECORD_HEADER.size:
            yield offset, None, "short record header"
            return
        length, crc = RECORD_HEADER.unpack_from(data, offset)
        start = offset + RECORD_HEADER.size
        if length > MAX_RECORD:
            yield offset, None, f"record length {length} beyond {MAX_RECORD}"
            return
        if end - start < length:
            yield offset, None, f"short payload ({end - start} of {length} bytes)"
            return
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            yield offset, None, "checksum mismatch"
            return
        yield offset, payload, ""
        offset = start + length


def scan(path: Path) -> ScanResult:
    """Read every valid record of a journal without changing it."""
    data = path.read_bytes()
    decoder = msgpack_event_decoder()
    events: list[Event] = []
    valid = len(HEADER)
    torn: TornTail | None = None
    for offset, payload, reason in _frames(data):
        if payload is None:
            torn = TornTail(offset=offset, dropped_bytes=len(data) - offset, reason=reason)
            break
        try:
            events.append(decoder.decode(payload))
        except msgspec.DecodeError as exc:
            raise JournalError(f"journal record at offset {offset}: {exc}") from exc
        valid = offset + RECORD_HEADER.size + len(payload)
    return ScanResult(events=events, valid_bytes=valid, torn=torn)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalWriter:
    """Appends events to a journal file under a :class:`Durability` policy."""

    def __init__(
        self,
        path: Path,
        durability: Durability = Durability.ALWAYS,
        *,
        group_records: int = 1000,
        group_ms: float = 5.0,
    ) -> None:
        if group_records < 1 or group_ms <= 0:
            raise ValueError(
                f"group_records={group_records!r}, group_ms={group_ms!r}: must be positive"
            )
        self.path = Path(path)
        self.durability = Durability(durability)
        self.group_records = group_records
        self.group_seconds = group_ms / 1000.0
        self.recovered = self._open()
        self._buffer = bytearray()
        self._buffered = 0
        self._first_buffered_at = 0.0
        self._last_seq = self.recovered.events[-1].seq if self.recovered.events else 0
        self.durable_seq = self._last_seq

    def _open(self) -> ScanResult:
        path = self.path
        if not path.exists() or path.stat().st_size == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(HEADER)
                handle.flush()
                os.fsync(handle.fileno())
            _fsync_dir(path.parent)
        result = scan(path)
        if result.torn is not None:
            torn = result.torn
            quarantine = path.with_name(f"{path.name}.torn-{torn.offset}")
            with open(path, "rb") as source:
                source.seek(torn.offset)
                quarantine.write_bytes(source.read())
            with open(path, "r+b") as handle:
                handle.truncate(torn.offset)
                handle.flush()
                os.fsync(handle.fileno())
            result = ScanResult(
                events=result.events,
                valid_bytes=result.valid_bytes,
                torn=msgspec.structs.replace(torn, quarantine=str(quarantine)),
            )
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        return result

    @property
    def last_seq(self) -> int:
        """Sequence number of the last appended event (acknowledged or not)."""
        return self._last_seq

    def append(self, event: Event) -> bool:
        """Append one event; return True when it (and all before it) is durable."""
        self._last_seq = event.seq
        if self.durability is Durability.GROUP:
            if not self._buffered:
                self._first_buffered_at = time.monotonic()
            self._buffer += encode_record(event)
            self._buffered += 1
            if (
                self._buffered >= self.group_records
                or time.monotonic() - self._first_buffered_at >= self.group_seconds
            ):
                self.sync()
                return True
            return False
        os.write(self._fd, encode_record(event))
        if self.durability is Durability.OS:
            return False
        os.fsync(self._fd)
        self.durable_seq = event.seq
        return True

    def sync(self) -> None:
        """Write what is buffered and fsync: everything appended so far becomes durable."""
        if self._buffer:
            os.write(self._fd, self._buffer)
            self._buffer.clear()
            self._buffered = 0
        os.fsync(self._fd)
        self.durable_seq = self._last_seq

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
