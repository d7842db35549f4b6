"""Adapters that persist the core: the event journal and snapshots."""

from fengkong.journal.durable import DurableEngine, RecoveryReport, recover
from fengkong.journal.log import Durability, JournalError, JournalWriter, TornTail, scan
from fengkong.journal.snapshots import SnapshotStore

__all__ = [
    "Durability",
    "DurableEngine",
    "JournalError",
    "JournalWriter",
    "RecoveryReport",
    "SnapshotStore",
    "TornTail",
    "recover",
    "scan",
]
