"""Replay an event log through a fresh engine: the library behind ``fengkong replay``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import msgspec

from fengkong.engine.core import Engine
from fengkong.journal.durable import DurableEngine
from fengkong.journal.log import Durability
from fengkong.model.events import Event, Rejected, json_event_decoder


class ReplaySummary(msgspec.Struct, frozen=True):
    events: int
    applied: int
    rejected: int
    duplicates: int
    outputs: int
    by_type: dict[str, int]
    rejections: dict[str, int]
    last_seq: int
    state_hash: str


class FinalState(msgspec.Struct, tag=True, frozen=True):
    """Last line of a replay's output log."""

    last_seq: int
    state_hash: str


class LogLineError(ValueError):
    """A line of an event log that does not decode as an event."""


def read_events(path: Path) -> Iterator[Event]:
    """Events of a JSON-lines log, one per non-blank line; errors name the line."""
    decoder = json_event_decoder()
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise LogLineError(f"{path}:{number}: {exc}") from exc


def replay(
    events: Iterator[Event],
    *,
    journal: Path | None = None,
    durability: Durability = Durability.GROUP,
    snapshot_every: int = 0,
    out: IO[bytes] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Run ``events`` through a fresh engine (journaled when ``journal`` is given)."""
    durable = DurableEngine(journal, durability, snapshot_every=snapshot_every) if journal else None
    engine = durable.engine if durable is not None else Engine()
    process = durable.process if durable is not None else engine.process
    encoder = msgspec.json.Encoder()
    by_type: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    count = applied = rejected = duplicates = outputs_total = 0
    try:
        for event in events:
            count += 1
            by_type[type(event).__name__] += 1
            outputs = process(event)
            outputs_total += len(outputs)
            if outputs and type(outputs[0]).__name__ == "Duplicate":
                duplicates += 1
            elif outputs and isinstance(outputs[0], Rejected):
                rejected += 1
                rejections[outputs[0].reason.value] += 1
            else:
                applied += 1
            if out is not None:
                for output in outputs:
                    out.write(encoder.encode(output) + b"\n")
            if progress is not None:
                progress(1)
    finally:
        if durable is not None:
            durable.close()
    state_hash = engine.state_hash()
    if out is not None:
        out.write(encoder.encode(FinalState(last_seq=engine.last_seq, state_hash=state_hash)))
        out.write(b"\n")
    return ReplaySummary(
        events=count,
        applied=applied,
        rejected=rejected,
        duplicates=duplicates,
        outputs=outputs_total,
        by_type=dict(sorted(by_type.items())),
        rejections=dict(sorted(rejections.items())),
        last_seq=engine.last_seq,
        state_hash=state_hash,
    )
