"""Versioned engine snapshots, written so that a crash never destroys the last good one.

A snapshot file ``snapshot-<seq:020d>.fks`` holds ``b"FKS1" | u32 version | u64 seq |
u64 length | u32 crc32`` then the engine's snapshot bytes. It is written to a temporary file
in the same folder, ``fsync``-ed, renamed over its final name and the folder ``fsync``-ed;
a crash at any point leaves either the old set of snapshots or the old set plus the new one.
Reading skips (and reports) any file whose header or checksum does not verify.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import msgspec

SNAPSHOT_MAGIC = b"FKS1"
SNAPSHOT_FILE_VERSION = 1
_HEADER = struct.Struct("<4sIQQI")
_PREFIX = "snapshot-"
_SUFFIX = ".fks"


class SnapshotFile(msgspec.Struct, frozen=True):
    seq: int
    path: str


class SnapshotStore:
    """A folder of snapshots; keeps the newest ``keep`` valid ones."""

    def __init__(self, folder: Path, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError(f"keep={keep!r}: must be at least 1")
        self.folder = Path(folder)
        self.keep = keep
        self.folder.mkdir(parents=True, exist_ok=True)
        self.skipped: list[str] = []

    def write(self, seq: int, body: bytes) -> Path:
        header = _HEADER.pack(
            SNAPSHOT_MAGIC, SNAPSHOT_FILE_VERSION, seq, len(body), zlib.crc32(body)
        )
        final = self.folder / f"{_PREFIX}{seq:020d}{_SUFFIX}"
        temporary = final.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(header)
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._prune()
        return final

    def files(self) -> list[SnapshotFile]:
        """Snapshot files by sequence, newest first (validity not checked)."""
        found = []
        for path in self.folder.glob(f"{_PREFIX}*{_SUFFIX}"):
            digits = path.name[len(_PREFIX) : -len(_SUFFIX)]
            if digits.isdigit():
                found.append(SnapshotFile(seq=int(digits), path=str(path)))
        return sorted(found, key=lambda f: f.seq, reverse=True)

    def read(self, path: Path) -> tuple[int, bytes] | None:
        """``(seq, body)`` of a snapshot file, or None when it does not verify."""
        data = Path(path).read_bytes()
        if len(data) < _HEADER.size:
            return None
        magic, version, seq, length, crc = _HEADER.unpack_from(data)
        body = data[_HEADER.size :]
        if (
            magic != SNAPSHOT_MAGIC
            or version != SNAPSHOT_FILE_VERSION
            or len(body) != length
            or zlib.crc32(body) != crc
        ):
            return None
        return seq, body

    def latest(self) -> tuple[int, bytes] | None:
        """The newest snapshot that verifies; names of the ones skipped go to ``skipped``."""
        self.skipped = []
        for entry in self.files():
            found = self.read(Path(entry.path))
            if found is not None:
                return found
            self.skipped.append(entry.path)
        return None

    def _prune(self) -> None:
        for entry in self.files()[self.keep :]:
            Path(entry.path).unlink(missing_ok=True)
        for stale in self.folder.glob(f"{_PREFIX}*.tmp"):
            stale.unlink(missing_ok=True)
