"""A journaled engine: write-ahead journal, periodic snapshots, and crash recovery.

Layout of a journal folder: ``events.fkj`` (the journal, see :mod:`fengkong.journal.log`) and
``snapshots/`` (see :mod:`fengkong.journal.snapshots`). Recovery = the newest snapshot that
verifies, then every journal record after its sequence number.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from fengkong.engine.component import Component
from fengkong.engine.core import Engine
from fengkong.journal.log import Durability, JournalWriter, TornTail
from fengkong.journal.snapshots import SnapshotStore
from fengkong.model.events import Event, Output

JOURNAL_FILE = "events.fkj"
SNAPSHOT_FOLDER = "snapshots"


class RecoveryReport(msgspec.Struct, frozen=True):
    snapshot_seq: int
    replayed: int
    last_seq: int
    torn: TornTail | None
    skipped_snapshots: list[str]


class DurableEngine:
    """Journals each admitted event before the engine applies it (write-ahead).

    Duplicates are answered by the engine and not journaled; an out-of-sequence event raises
    :class:`~fengkong.engine.core.SequenceError` before anything is written.
    """

    def __init__(
        self,
        folder: Path,
        durability: Durability = Durability.ALWAYS,
        *,
        group_records: int = 1000,
        group_ms: float = 5.0,
        snapshot_every: int = 0,
        components: Sequence[Component] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.snapshots = SnapshotStore(self.folder / SNAPSHOT_FOLDER)
        self.journal = JournalWriter(
            self.folder / JOURNAL_FILE,
            durability,
            group_records=group_records,
            group_ms=group_ms,
        )
        self.engine, self.report = _recover(self.snapshots, self.journal, components)
        self.snapshot_every = snapshot_every

    def process(self, event: Event) -> list[Output]:
        engine = self.engine
        if engine.admit(event):
            self.journal.append(event)
        outputs = engine.process(event)
        if self.snapshot_every and engine.last_seq % self.snapshot_every == 0:
            self.snapshot()
        return outputs

    def snapshot(self) -> Path:
        """Make everything journaled durable, then write a snapshot at the current seq."""
        self.journal.sync()
        return self.snapshots.write(self.engine.last_seq, self.engine.snapshot())

    def close(self) -> None:
        self.journal.close()

    def __enter__(self) -> DurableEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _recover(
    snapshots: SnapshotStore,
    journal: JournalWriter,
    components: Sequence[Component] | None,
) -> tuple[Engine, RecoveryReport]:
    latest = snapshots.latest()
    if latest is None:
        engine = Engine(components)
        snapshot_seq = 0
    else:
        snapshot_seq, body = latest
        engine = Engine.restore(body, components)
    replayed = 0
    for event in journal.recovered.events:
        if event.seq > engine.last_seq:
            engine.process(event)
            replayed += 1
    report = RecoveryReport(
        snapshot_seq=snapshot_seq,
        replayed=replayed,
        last_seq=engine.last_seq,
        torn=journal.recovered.torn,
        skipped_snapshots=list(snapshots.skipped),
    )
    return engine, report


def recover(
    folder: Path, components: Sequence[Component] | None = None
) -> tuple[Engine, RecoveryReport]:
    """Recover the engine of a journal folder (truncating a torn tail, as on open)."""
    journal = JournalWriter(Path(folder) / JOURNAL_FILE, Durability.OS)
    try:
        return _recover(SnapshotStore(Path(folder) / SNAPSHOT_FOLDER), journal, components)
    finally:
        journal.close()
