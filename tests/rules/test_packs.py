"""The shipped example packs, their rule-author cases, and the ``fengkong rules`` commands."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from fengkong.cli import app
from fengkong.engine.core import register_event_kinds
from fengkong.rules.cases import load_cases, run_cases
from fengkong.rules.events import RulePackLoaded
from fengkong.rules.pack import load_pack
from tests.rules.kit import T0, pack_text, rule, withdrawal

register_event_kinds()  # the trading surveillance pack decides OrderRequest (a gate event)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
PACKS = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".cases.yaml"))
runner = CliRunner()


def test_the_six_example_packs_are_shipped():
    assert [p.stem for p in PACKS] == [
        "account_takeover",
        "api_key_abuse",
        "trading_surveillance",
        "wash_trading",
        "withdrawal_safety",
        "withdrawal_velocity",
    ]


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.stem)
def test_every_shipped_rule_is_seen_firing_and_not_firing_in_its_cases(pack):
    plan = load_pack(pack.read_text())
    results = run_cases(plan.source, load_cases(pack.with_suffix(".cases.yaml").read_text()))
    failures = [f for r in results for f in r.failures]
    assert failures == []
    seen = set().union(*(r.fired for r in results))
    for spec in plan.rules:
        assert (spec.name, True) in seen, f"{spec.name} never fires in the cases"
        assert (spec.name, False) in seen, f"{spec.name} never stays silent in the cases"


def test_all_example_packs_load_side_by_side():
    from fengkong.rules.component import RulesComponent

    component = RulesComponent()
    for i, pack in enumerate(PACKS):
        [out] = component.apply(
            RulePackLoaded(seq=i, id=pack.stem, ts=T0, pack_yaml=pack.read_text(), author="t")
        )
        assert type(out).__name__ == "RulePackActivated"
    [decision] = component.apply(withdrawal(address="0x8589427373D6D84E98730D7795D8f6f8731FDA16"))
    assert decision.outcome == "block"
    assert len(decision.packs) == len(PACKS)


def test_check_lists_every_problem_with_its_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        pack_text([rule("event.amout > 1", name="a"), rule("__import__('os')", name="b")])
    )
    result = runner.invoke(app, ["rules", "check", str(bad)])
    assert result.exit_code == 1
    assert "rules[0].if (rule 'a') 1:1: unknown_field" in result.output
    assert "rules[1].if (rule 'b') 1:1: dunder_name" in result.output


def test_check_accepts_a_shipped_pack_and_shows_its_code():
    result = runner.invoke(
        app, ["rules", "check", "--code", str(EXAMPLES / "account_takeover.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "account-takeover@2026.01.1 ok" in result.output
    assert "def evaluate_WithdrawalRequest(ev, now):" in result.output


def test_test_command_passes_the_shipped_cases_and_fails_a_wrong_expectation(tmp_path):
    pack = EXAMPLES / "withdrawal_velocity.yaml"
    result = runner.invoke(app, ["rules", "test", str(pack), str(pack.with_suffix(".cases.yaml"))])
    assert result.exit_code == 0, result.output
    assert "9 passed, 0 failed" in result.output
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "cases:\n- name: wrong\n  events:\n"
        "  - {type: WithdrawalRequest, at: 0s, account: u, asset: BTC, amount: '1', value_usd: '1',"
        " address: a, network: BTC, expect: {outcome: block}}\n"
    )
    result = runner.invoke(app, ["rules", "test", str(pack), str(wrong)])
    assert result.exit_code == 1
    assert "outcome is allow, expected block" in result.output


def test_backtest_counts_decisions_per_rule_and_the_changes_against_the_recorded_version(tmp_path):
    old = pack_text(
        [rule("event.value_usd > 50000", name="large", outcome="review")], name="limits"
    )
    new = pack_text(
        [
            rule("event.value_usd > 20000", name="large", outcome="review"),
            rule("event.value_usd > 80000", name="huge", outcome="block", mode="shadow"),
        ],
        name="limits",
        version="2",
    )
    log = [RulePackLoaded(seq=1, id="load", ts=T0, pack_yaml=old, author="ops")]
    for i, usd in enumerate(["10000", "30000", "60000", "90000"], start=2):
        log.append(withdrawal(T0 + i, value_usd=usd))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(msgspec.json.encode(e) for e in log) + b"\n")
    candidate = tmp_path / "new.yaml"
    candidate.write_text(new)
    result = runner.invoke(app, ["rules", "backtest", str(candidate), str(events)])
    assert result.exit_code == 0, result.output
    assert "limits@2 vs as recorded: 5 events, 4 decisions, 0 rejected" in result.output
    assert "changed decisions: 1" in result.output
    from fengkong.rules.backtest import run_backtest

    report = run_backtest(new, log)
    assert report.changed == {("allow", "review"): 1}
    assert report.rules[("limits@2", "large")].fired == 3
    assert report.rules[("limits@2", "huge")].fired == 1
    assert report.outcomes["review"] == 3
    assert report.shadow_outcomes["block"] == 1
    explicit = run_backtest(new, log[1:], baseline_text=old)
    assert explicit.changed == {("allow", "review"): 1}
