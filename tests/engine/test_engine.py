"""Engine admission (sequence, duplicates), snapshots and the state hash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from fengkong.engine import Engine, SequenceError, SnapshotError
from fengkong.model.events import Deposit, Duplicate
from fengkong.replay import read_events
from tests.factories import exchange, run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "exchange-day.jsonl"
EXAMPLE_HASH = "bb2b8bf83ec6eaf16fc6987fc560a17dedd86c3932073866ad174c4083333432"


def funded_engine():
    log = exchange(accounts={"a": {"USDT": "100"}})
    engine, _ = run(log.events)
    return engine, log


def test_gap_and_stale_sequence_numbers_raise_and_change_nothing():
    engine, log = funded_engine()
    before = (engine.state_hash(), engine.last_seq)
    gapped = Deposit(seq=log.seq + 1, id="gap", ts=0, account="a", asset="USDT", amount="1")
    with pytest.raises(SequenceError, match="gap") as caught:
        engine.process(gapped)
    assert (caught.value.expected, caught.value.got) == (log.seq, log.seq + 1)
    stale = Deposit(seq=log.seq - 1, id="stale", ts=0, account="a", asset="USDT", amount="1")
    with pytest.raises(SequenceError, match="stale"):
        engine.process(stale)
    assert (engine.state_hash(), engine.last_seq) == before
    # the id of a refused event was not consumed: it can come again in sequence
    assert engine.process(msgspec.structs.replace(gapped, seq=log.seq)) == []


def test_duplicate_id_is_a_noop_whatever_its_sequence_number():
    engine, log = funded_engine()
    event = log.deposit("a", "USDT", "5")
    engine.process(event)
    snapshot_hash, last = engine.state_hash(), engine.last_seq
    assert engine.process(event) == [Duplicate(seq=event.seq, id=event.id)]
    same_id_new_seq = msgspec.structs.replace(event, seq=last + 1)
    assert engine.process(same_id_new_seq) == [Duplicate(seq=last + 1, id=event.id)]
    assert (engine.state_hash(), engine.last_seq) == (snapshot_hash, last)


def test_ids_beyond_the_dedupe_window_are_caught_by_the_sequence_check():
    log = exchange(accounts={"a": {"USDT": "1"}})
    engine = Engine(dedupe_window=2)
    run(log.events, engine)
    with pytest.raises(SequenceError):
        engine.process(log.events[-3])


def test_snapshot_round_trip_and_refusal_of_foreign_bytes():
    engine, log = funded_engine()
    restored = Engine.restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    assert restored.last_seq == engine.last_seq
    assert restored.process(log.events[0]) == [Duplicate(seq=1, id=log.events[0].id)]
    with pytest.raises(SnapshotError, match="not msgpack"):
        Engine.restore(b"\xc1")
    with pytest.raises(SnapshotError, match="not an engine snapshot"):
        Engine.restore(msgspec.msgpack.encode({"format": "x"}))
    body = msgspec.msgpack.decode(engine.snapshot())
    body["version"] = 99
    with pytest.raises(SnapshotError, match="version=99"):
        Engine.restore(msgspec.msgpack.encode(body))


def test_example_log_replays_to_its_recorded_state_hash():
    """examples/ is a regression test: the README's example log and its final hash."""
    engine, outputs = run(list(read_events(EXAMPLE)))
    assert engine.state_hash() == EXAMPLE_HASH
    kinds = {type(o).__name__ for o in outputs}
    assert {
        "Rejected", "Duplicate", "FundingSettled", "InstrumentSettled", "IndexPrice",
        "MarkPrice", "Decision", "OrderAccepted", "OrderRejected",
    } <= kinds  # fmt: skip
    refused = [o.reason.value for o in outputs if type(o).__name__ == "OrderRejected"]
    assert refused == ["insufficient_margin", "unknown_account", "price_outside_band"]
    decisions = [o.outcome.value for o in outputs if type(o).__name__ == "Decision"]
    assert decisions == ["allow", "hold_withdrawal", "block"]


def test_state_hash_is_equal_across_processes_and_hash_seeds():
    script = (
        "from fengkong.engine import Engine\n"
        "from fengkong.replay import read_events\n"
        f"e = Engine()\n[e.process(x) for x in read_events({str(EXAMPLE)!r})]\n"
        "print(e.state_hash())"
    )
    hashes = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        hashes.add(done.stdout.strip())
    assert hashes == {EXAMPLE_HASH}


def test_every_example_event_kind_is_exercised():
    from fengkong.ledger.ledger import Ledger

    used = {type(e) for e in read_events(EXAMPLE)}
    owned = set(Ledger().handlers())
    assert owned <= used, owned - used


def test_every_registered_event_kind_has_an_owner_in_the_embedded_engine():
    """No kind of input can reach the default engine only to be refused as unhandled."""
    from fengkong.model.events import event_types

    engine = Engine()
    product = [kind for kind in event_types() if kind.__module__.startswith("fengkong.")]
    assert len(product) >= 35
    assert [kind.__name__ for kind in product if kind not in engine._owners] == []


def test_register_event_kinds_registers_what_the_default_components_do():
    """In a fresh interpreter each time: the kinds ``register_event_kinds`` registers equal
    those registered once the embedded engine's components are built."""
    show = (
        "from fengkong.model.events import event_types; "
        "print(sorted(k.__name__ for k in event_types()))"
    )
    kinds = {}
    for name, setup in (
        (
            "registered",
            "from fengkong.engine.core import register_event_kinds; register_event_kinds()",
        ),
        ("built", "from fengkong.engine.core import default_components; default_components()"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", f"{setup}; {show}"], capture_output=True, text=True, check=True
        )
        kinds[name] = done.stdout
    assert kinds["registered"] == kinds["built"]
    assert "'OrderRequest'" in kinds["registered"] and "'Borrow'" in kinds["registered"]
