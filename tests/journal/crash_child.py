"""Child process of the crash test: journals a deterministic log and prints acknowledgements.

Usage: ``python -m tests.journal.crash_child FOLDER DURABILITY FILLS``. After every event that
the journal reports durable it prints ``ack <seq>`` (flushed), so the parent knows which
events were acknowledged before it sends SIGKILL.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fengkong.journal import Durability, DurableEngine
from tests.factories import busy_log


def main() -> None:
    folder, durability, fills = Path(sys.argv[1]), Durability(sys.argv[2]), int(sys.argv[3])
    events = busy_log(fills, accounts=20, seed=11)
    with DurableEngine(
        folder, durability, group_records=64, group_ms=2.0, snapshot_every=997
    ) as durable:
        start = durable.engine.last_seq
        acked = durable.journal.durable_seq
        print(f"ready {start}", flush=True)
        for event in events[start:]:
            durable.process(event)
            if durable.journal.durable_seq != acked:
                acked = durable.journal.durable_seq
                print(f"ack {acked}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
