"""The core commands: replay, state, schema."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fengkong.cli import app
from fengkong.model.events import event_types, output_types
from tests.engine.test_engine import EXAMPLE, EXAMPLE_HASH

runner = CliRunner()


def test_replay_prints_summary_and_hash_and_writes_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["replay", str(EXAMPLE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert EXAMPLE_HASH in result.output
    assert "rejected" in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[-1] == {"type": "FinalState", "last_seq": 79, "state_hash": EXAMPLE_HASH}
    assert {line["type"] for line in lines[:-1]} >= {"Rejected", "Duplicate", "FundingSettled"}


def test_replay_with_journal_then_state_recovers_the_same_hash(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    result = runner.invoke(
        app,
        ["replay", str(EXAMPLE), "--journal", str(journal), "--snapshot-every", "10",
         "--durability", "always"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    state = runner.invoke(app, ["state", "--journal", str(journal)], env={"COLUMNS": "200"})
    assert state.exit_code == 0, state.output
    assert "recovered from snapshot seq 70 + 9 journal records" in state.output
    assert EXAMPLE_HASH in state.output
    assert "BTCUSD-PERP" in state.output and "sys:settlement" in state.output


def test_replay_stops_on_a_sequence_gap_with_a_clear_message(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text().splitlines()
    gapped = tmp_path / "gapped.jsonl"
    gapped.write_text("\n".join(lines[:5] + lines[6:]) + "\n")
    result = runner.invoke(app, ["replay", str(gapped)])
    assert result.exit_code == 2
    assert "seq=7" in result.output and "gap" in result.output


def test_replay_names_the_line_that_does_not_decode(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"type": "Deposit", "seq": 1}\n')
    result = runner.invoke(app, ["replay", str(broken)])
    assert result.exit_code == 2
    assert "broken.jsonl:1" in result.output


def test_schema_lists_every_event_and_output_kind() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document["inputs"]) >= {t.__name__ for t in event_types()}
    assert set(document["outputs"]) >= {t.__name__ for t in output_types()}
    assert "Fill" in document["$defs"]
    assert document["$defs"]["Fill"]["properties"]["price"]["type"] == "string"


def test_help_explains_each_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("replay", "state", "schema"):
        assert command in result.output
