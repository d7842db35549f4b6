"""SIGKILL a journaling child process at random points, then recover.

In ``always`` mode no acknowledged event may be lost. In every mode the recovered state must
equal an uninterrupted run of the records that survived. A torn final record (the partial
write a power loss leaves) is appended after some kills and must be reported and dropped.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fengkong.journal import recover
from fengkong.journal.durable import JOURNAL_FILE
from fengkong.journal.log import encode_record
from tests.factories import busy_log, run

ROOT = Path(__file__).resolve().parents[2]
FILLS = 6000
EVENTS = busy_log(FILLS, accounts=20, seed=11)  # the same log the child journals
KILLS = {"always": 20, "group": 8, "os": 8}


def kill_child_at_random_point(folder: Path, durability: str, rng: random.Random) -> int:
    """Start the child, SIGKILL it after a random delay; return the last acknowledged seq."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.journal.crash_child", str(folder), durability, str(FILLS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    acked = [0]
    ready = threading.Event()

    def read() -> None:
        for line in child.stdout:
            word, _, value = line.partition(" ")
            if word == "ack":
                acked[0] = int(value)
            elif word == "ready":
                ready.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert ready.wait(30), "child did not start"
    time.sleep(rng.uniform(0.0, 0.25))
    child.send_signal(signal.SIGKILL)
    child.wait()
    reader.join()
    return acked[0]


@pytest.mark.parametrize("durability", sorted(KILLS))
def test_sigkill_loses_no_acknowledged_event_and_recovers_exactly(tmp_path, durability):
    rng = random.Random(f"crash-{durability}")
    folder = tmp_path / durability
    hashes: dict[int, str] = {}
    previous = 0
    torn_seen = 0
    for point in range(KILLS[durability]):
        acked = kill_child_at_random_point(folder, durability, rng)
        if point % 3 == 1:
            # simulate the torn last write of a power loss: a prefix of the next record
            journal = folder / JOURNAL_FILE
            record = encode_record(EVENTS[min(acked, len(EVENTS) - 1)])
            with open(journal, "ab") as handle:
                handle.write(record[: rng.randint(1, len(record) - 1)])
        engine, report = recover(folder)
        if point % 3 == 1:
            assert report.torn is not None, "a torn tail must be reported"
            torn_seen += 1
        survived = engine.last_seq
        if durability == "always":
            assert survived >= acked, f"acknowledged seq {acked} lost (recovered {survived})"
        assert survived >= previous, "recovery must never go backwards"
        previous = survived
        if survived not in hashes:
            hashes[survived] = run(EVENTS[:survived])[0].state_hash()
        assert engine.state_hash() == hashes[survived]
    assert torn_seen >= KILLS[durability] // 3
