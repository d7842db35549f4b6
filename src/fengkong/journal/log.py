"""Append-only event journal: length-prefixed, checksummed msgpack records.

File layout: an 8-byte header ``b"FKJ1"`` + ``u32`` format version, then records, each
``u32 length | u32 crc32(payload) | payload`` (little-endian), where ``payload`` is the
msgspec msgpack encoding of one tagged input event.

Durability (:class:`Durability`):

* ``always``: every record is written and ``fsync``-ed before :meth:`JournalWriter.append`
  returns; an appended event is acknowledged and survives a crash of the process or machine.
* ``group``: records are buffered and written + ``fsync``-ed together by a background thread
  every ``group_records`` records or ``group_ms`` milliseconds (group commit), so the engine
  never waits for the disk; :attr:`JournalWriter.durable_seq` says which events are
  acknowledged. Unacknowledged records may be lost.
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
import threading
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


class _GroupCommitter:
    """Group commit on a background thread: the engine thread appends encoded records to a
    buffer under a lock; the flusher thread takes the whole buffer when ``group_records``
    records are waiting, when ``group_seconds`` have passed since its last write, or when a
    :meth:`sync` asks, then writes and ``fsync``-s it with the lock released (``fsync`` lets
    the engine thread run on) and advances ``durable_seq``. A write error stops the flusher
    and is raised, as :class:`JournalError`, by the next append or sync."""

    def __init__(self, fd: int, durable_seq: int, group_records: int, group_seconds: float):
        self.fd = fd
        self.group_records = group_records
        self.group_seconds = group_seconds
        self.durable_seq = durable_seq
        self._buffer = bytearray()
        self._buffered = 0
        self._buffered_seq = durable_seq
        self._urgent = False
        self._closing = False
        self._failure: OSError | None = None
        self._changed = threading.Condition(threading.Lock())
        self._thread = threading.Thread(target=self._run, name="fengkong-journal", daemon=True)
        self._thread.start()

    def append(self, record: bytes, seq: int) -> None:
        with self._changed:
            if self._failure is not None:
                raise JournalError(f"journal write failed: {self._failure}")
            self._buffer += record
            self._buffered += 1
            self._buffered_seq = seq
            # wake the committer when a group starts (its timer) and when it is full
            if self._buffered == 1 or self._buffered >= self.group_records:
                self._changed.notify_all()

    def sync(self, seq: int) -> None:
        """Block until every record up to ``seq`` is written and fsync-ed."""
        with self._changed:
            self._urgent = True
            self._changed.notify_all()
            while self.durable_seq < seq and self._failure is None:
                self._changed.wait()
            if self._failure is not None:
                raise JournalError(f"journal write failed: {self._failure}")

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()
        if self._failure is not None:
            raise JournalError(f"journal write failed: {self._failure}")

    def _run(self) -> None:
        changed = self._changed
        while True:
            with changed:
                while not self._buffer and not self._closing:
                    changed.wait()
                if not self._buffer:
                    return  # closing, nothing left
                if not (self._urgent or self._closing or self._buffered >= self.group_records):
                    changed.wait(self.group_seconds)
                data, seq = self._buffer, self._buffered_seq  # hand the buffer over, no copy
                self._buffer = bytearray()
                self._buffered = 0
                self._urgent = False
            try:
                os.write(self.fd, data)
                os.fsync(self.fd)
            except OSError as exc:
                with changed:
                    self._failure = exc
                    changed.notify_all()
                return
            with changed:
                self.durable_seq = seq
                changed.notify_all()


class JournalWriter:
    """Appends events to a journal file under a :class:`Durability` policy.

    :attr:`durable_seq` is the last event acknowledged as durable: in ``always`` mode every
    appended event at once, in ``group`` mode as the background committer finishes each group,
    in ``os`` mode never (a process crash loses nothing, a power loss may).
    """

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
        self.recovered = self._open()
        self._last_seq = self.recovered.events[-1].seq if self.recovered.events else 0
        self._durable_seq = self._last_seq
        self._group = (
            _GroupCommitter(self._fd, self._last_seq, group_records, group_ms / 1000.0)
            if self.durability is Durability.GROUP
            else None
        )

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

    @property
    def durable_seq(self) -> int:
        """Sequence number of the last event acknowledged as durable."""
        return self._group.durable_seq if self._group is not None else self._durable_seq

    def append(self, event: Event) -> None:
        """Append one event (durable at once in ``always`` mode; see :attr:`durable_seq`)."""
        self._last_seq = event.seq
        if self._group is not None:
            self._group.append(encode_record(event), event.seq)
            return
        os.write(self._fd, encode_record(event))
        if self.durability is Durability.ALWAYS:
            os.fsync(self._fd)
            self._durable_seq = event.seq

    def sync(self) -> None:
        """Make everything appended so far durable (write and fsync), blocking until it is."""
        if self._group is not None:
            self._group.sync(self._last_seq)
            return
        os.fsync(self._fd)
        self._durable_seq = self._last_seq

    def close(self) -> None:
        if self._fd >= 0:
            if self._group is not None:
                self._group.close()
            else:
                self.sync()
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
