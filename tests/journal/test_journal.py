"""Journal records, torn tails, durability, snapshots and recovery."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import pytest

from fengkong.engine import Engine
from fengkong.journal import (
    Durability,
    DurableEngine,
    JournalError,
    JournalWriter,
    SnapshotStore,
    recover,
    scan,
)
from fengkong.journal.durable import JOURNAL_FILE, SNAPSHOT_FOLDER
from fengkong.journal.log import HEADER, encode_record
from tests.factories import busy_log, run

EVENTS = busy_log(300, accounts=10, seed=3)


def expected_hash(count: int) -> str:
    engine, _ = run(EVENTS[:count])
    return engine.state_hash()


def journal_of(tmp_path: Path, count: int, durability=Durability.ALWAYS) -> Path:
    path = tmp_path / "events.fkj"
    with JournalWriter(path, durability) as writer:
        for event in EVENTS[:count]:
            writer.append(event)
    return path


def test_records_round_trip_in_order(tmp_path):
    path = journal_of(tmp_path, 50)
    result = scan(path)
    assert result.events == EVENTS[:50]
    assert result.torn is None
    assert result.valid_bytes == path.stat().st_size


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[:-3], "short payload"),
        (lambda data: data + b"\x05\x00", "short record header"),
        (lambda data: data + struct.pack("<II", 2**30, 0) + b"xx", "record length"),
        (lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]), "checksum mismatch"),
    ],
)
def test_torn_or_corrupt_tail_is_reported_set_aside_and_truncated(tmp_path, damage, reason):
    path = journal_of(tmp_path, 20)
    intact = path.read_bytes()
    path.write_bytes(damage(intact))
    writer = JournalWriter(path)
    torn = writer.recovered.torn
    assert torn is not None and reason in torn.reason
    assert Path(torn.quarantine).read_bytes() == damage(intact)[torn.offset :]
    survivors = writer.recovered.events
    assert survivors == EVENTS[: len(survivors)]
    assert len(survivors) >= 19
    # appending after truncation continues a clean journal
    writer.append(EVENTS[len(survivors)])
    writer.close()
    assert scan(path).events == EVENTS[: len(survivors) + 1]
    assert scan(path).torn is None


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "events.fkj"
    path.write_bytes(b"NOTAJOURNAL")
    with pytest.raises(JournalError, match="header"):
        scan(path)


def wait_until_durable(writer: JournalWriter, seq: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while writer.durable_seq < seq:
        assert time.monotonic() < deadline, f"durable_seq {writer.durable_seq} never reached {seq}"
        time.sleep(0.001)


def test_group_commit_acknowledges_full_groups_in_the_background_and_the_rest_on_sync(tmp_path):
    path = tmp_path / "events.fkj"
    writer = JournalWriter(path, Durability.GROUP, group_records=10, group_ms=60_000)
    for event in EVENTS[:10]:
        writer.append(event)
    wait_until_durable(writer, EVENTS[9].seq)
    for event in EVENTS[10:20]:
        writer.append(event)
    wait_until_durable(writer, EVENTS[19].seq)
    for event in EVENTS[20:25]:
        writer.append(event)
    time.sleep(0.05)
    assert writer.durable_seq == EVENTS[19].seq  # a partial group waits for its timer
    assert scan(path).events == EVENTS[:20]
    writer.sync()
    assert writer.durable_seq == EVENTS[24].seq
    writer.close()
    assert scan(path).events == EVENTS[:25]


def test_group_commit_timer_makes_a_partial_group_durable(tmp_path):
    writer = JournalWriter(
        tmp_path / "events.fkj", Durability.GROUP, group_records=1000, group_ms=20
    )
    for event in EVENTS[:3]:
        writer.append(event)
    wait_until_durable(writer, EVENTS[2].seq, seconds=2.0)
    writer.close()
    assert scan(tmp_path / "events.fkj").events == EVENTS[:3]


def test_os_mode_writes_every_record_without_fsync(tmp_path):
    path = tmp_path / "events.fkj"
    writer = JournalWriter(path, Durability.OS)
    writer.append(EVENTS[0])
    assert writer.durable_seq == 0  # never acknowledged as durable
    assert scan(path).events == EVENTS[:1]  # in the kernel already
    writer.close()


def test_snapshot_store_skips_corrupt_newest_and_prunes(tmp_path):
    store = SnapshotStore(tmp_path, keep=2)
    for seq in (10, 20, 30):
        store.write(seq, f"body-{seq}".encode())
    assert [f.seq for f in store.files()] == [30, 20]
    newest = Path(store.files()[0].path)
    newest.write_bytes(newest.read_bytes()[:-1] + b"!")
    assert store.latest() == (20, b"body-20")
    assert store.skipped == [str(newest)]
    # a crash mid-write leaves a temporary file that is never read as a snapshot
    (tmp_path / "snapshot-00000000000000000040.tmp").write_bytes(b"partial")
    assert store.latest() == (20, b"body-20")


def test_recovery_is_newest_snapshot_plus_journal_tail(tmp_path):
    with DurableEngine(tmp_path, Durability.GROUP, snapshot_every=100) as durable:
        for event in EVENTS[:250]:
            durable.process(event)
    engine, report = recover(tmp_path)
    assert report.snapshot_seq == 200
    assert report.replayed == 50
    assert engine.state_hash() == expected_hash(250)
    # snapshot taken, journal kept whole: a corrupt snapshot falls back to an older one
    for entry in SnapshotStore(tmp_path / SNAPSHOT_FOLDER).files()[:1]:
        Path(entry.path).write_bytes(b"garbage")
    engine, report = recover(tmp_path)
    assert report.snapshot_seq == 100 and report.skipped_snapshots
    assert engine.state_hash() == expected_hash(250)


def test_durable_engine_does_not_journal_duplicates(tmp_path):
    with DurableEngine(tmp_path) as durable:
        for event in EVENTS[:5]:
            durable.process(event)
        durable.process(EVENTS[2])
    assert scan(tmp_path / JOURNAL_FILE).events == EVENTS[:5]


def test_restart_continues_the_same_journal(tmp_path):
    with DurableEngine(tmp_path) as durable:
        for event in EVENTS[:40]:
            durable.process(event)
    with DurableEngine(tmp_path) as durable:
        assert durable.engine.last_seq == 40
        for event in EVENTS[40:80]:
            durable.process(event)
        final = durable.engine.state_hash()
    assert final == expected_hash(80)
    assert scan(tmp_path / JOURNAL_FILE).events == EVENTS[:80]


def test_empty_journal_file_gets_a_header(tmp_path):
    path = tmp_path / "events.fkj"
    path.touch()
    JournalWriter(path).close()
    assert path.read_bytes() == HEADER


def test_recovering_an_empty_folder_gives_a_fresh_engine(tmp_path):
    engine, report = recover(tmp_path)
    assert engine.state_hash() == Engine().state_hash()
    assert (report.snapshot_seq, report.replayed, report.torn) == (0, 0, None)


def test_record_layout_is_length_crc_payload():
    record = encode_record(EVENTS[0])
    length, crc = struct.unpack_from("<II", record)
    assert length == len(record) - 8
    assert crc == zlib.crc32(record[8:])
