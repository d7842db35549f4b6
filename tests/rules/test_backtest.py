"""Backtests with labels: per-arm and per-rule confusion matrices, precision and recall, the
decisions each rule changed, and the ``--against`` / ``--labels`` command line."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fengkong.cli import app
from fengkong.rules.backtest import Confusion, run_backtest
from fengkong.rules.component import RulesComponent
from fengkong.rules.events import Decision, RulePackLoaded
from fengkong.rules.outcomes import Outcome
from tests.rules.kit import T0, pack_text, rule, withdrawal

OLD = pack_text([rule("event.value_usd > 50000", name="large")], name="limits")
NEW = pack_text(
    [
        rule("event.value_usd > 20000", name="large"),
        rule("event.value_usd > 80000", name="huge", outcome="block", mode="shadow"),
    ],
    name="limits",
    version="2",
)


def _worked_example():
    """Four withdrawals of 10k, 30k, 60k and 90k USD, the 30k and 90k ones labeled bad.

    The old version reviews above 50k (60k, 90k); the new one reviews above 20k (30k, 60k,
    90k) and, in shadow, blocks above 80k (90k). So, counted by hand:

    * candidate: flags 30k, 60k, 90k: TP 2, FP 1 (60k), FN 0, TN 1: precision 2/3, recall 1;
    * baseline: flags 60k, 90k: TP 1, FP 1, FN 1 (30k), TN 1: precision 1/2, recall 1/2;
    * rule ``large``@2: the candidate's flags; it changed one decision (30k: allow -> review);
    * shadow rule ``huge``@2: fired on 90k: TP 1, FP 0, FN 1: precision 1, recall 1/2;
    * rule ``large``@1: the baseline's flags, no decision changed where it fired.
    """
    amounts = ["10000", "30000", "60000", "90000"]
    events = [withdrawal(T0 + i, value_usd=usd) for i, usd in enumerate(amounts)]
    labels = {events[0].id: False, events[1].id: True, events[2].id: False, events[3].id: True}
    return events, labels


def test_worked_example_by_arm_and_by_rule():
    events, labels = _worked_example()
    report = run_backtest(NEW, events, baseline_text=OLD, labels=labels)
    assert (report.labels, report.labeled) == (4, 4)
    assert report.scores["candidate"] == Confusion(tp=2, fp=1, fn=0, tn=1)
    assert report.scores["candidate+shadow"] == Confusion(tp=2, fp=1, fn=0, tn=1)
    assert report.scores["baseline"] == Confusion(tp=1, fp=1, fn=1, tn=1)
    assert report.scores["candidate"].precision == 2 / 3
    assert report.scores["candidate"].recall == 1
    assert (report.scores["baseline"].precision, report.scores["baseline"].recall) == (0.5, 0.5)

    large = report.rules[("limits@2", "large")]
    huge = report.rules[("limits@2", "huge")]
    old_large = report.baseline_rules[("limits@1", "large")]
    assert (large.fired, large.changed, huge.fired, huge.changed) == (3, 1, 1, 0)
    assert (old_large.fired, old_large.changed) == (2, 0)
    assert report.rule_confusion(large, "candidate") == Confusion(tp=2, fp=1, fn=0, tn=1)
    assert report.rule_confusion(huge, "candidate") == Confusion(tp=1, fp=0, fn=1, tn=2)
    assert report.rule_confusion(old_large, "baseline") == Confusion(tp=1, fp=1, fn=1, tn=1)
    assert report.rule_confusion(huge, "candidate").precision == 1
    assert report.rule_confusion(huge, "candidate").recall == 0.5


def test_without_labels_nothing_is_scored_and_unlabeled_events_never_count():
    events, _ = _worked_example()
    plain = run_backtest(NEW, events, baseline_text=OLD)
    assert plain.scores == {} and plain.labeled == 0
    assert plain.rules[("limits@2", "large")].changed == 1
    partial = run_backtest(NEW, events, baseline_text=OLD, labels={events[1].id: True, "x": False})
    assert (partial.labels, partial.labeled) == (2, 1)
    assert partial.scores["candidate"] == Confusion(tp=1)
    assert partial.scores["baseline"] == Confusion(fn=1)


def test_undefined_precision_and_recall_are_none():
    assert Confusion(fn=3, tn=1).precision is None
    assert Confusion(fp=2, tn=1).recall is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 120_000), st.sampled_from([True, False, None])),
        min_size=1,
        max_size=25,
    )
)
def test_scores_equal_a_brute_force_count_over_each_arms_own_decisions(rows):
    """Each arm decided again on its own, event by event, and its matrices counted here."""
    events = [withdrawal(T0 + i, value_usd=str(usd)) for i, (usd, _) in enumerate(rows)]
    labels = {e.id: label for e, (_, label) in zip(events, rows, strict=True) if label is not None}
    report = run_backtest(NEW, events, baseline_text=OLD, labels=labels)

    def decisions(text: str) -> list[Decision]:
        component = RulesComponent()
        component.apply(RulePackLoaded(seq=0, id="p", ts=0, pack_yaml=text, author="t"))
        return [component.apply(event)[0] for event in events]

    expected: dict[str, Confusion] = {a: Confusion() for a in ("baseline", "candidate", "shadow")}
    by_rule: dict[tuple[str, str], Confusion] = {}
    for arm, text in (("candidate", NEW), ("baseline", OLD)):
        for decision in decisions(text):
            positive = labels.get(decision.id)
            if positive is None:
                continue
            expected[arm].add(decision.outcome != Outcome.ALLOW, positive)
            if arm == "candidate":
                expected["shadow"].add(decision.shadow_outcome != Outcome.ALLOW, positive)
            fired = {(f.pack, f.rule) for f in decision.fired}
            names = [("limits@2", "large"), ("limits@2", "huge")]
            if arm == "baseline":
                names = [("limits@1", "large")]
            for name in names:
                by_rule.setdefault(name, Confusion()).add(name in fired, positive)

    assert report.labeled == len(labels)
    assert report.scores["candidate"] == expected["candidate"]
    assert report.scores["candidate+shadow"] == expected["shadow"]
    assert report.scores["baseline"] == expected["baseline"]
    for name, counts in report.rules.items():
        assert report.rule_confusion(counts, "candidate") == by_rule.get(name, Confusion())
    for name, counts in report.baseline_rules.items():
        assert report.rule_confusion(counts, "baseline") == by_rule.get(name, Confusion())


def test_command_line_against_and_labels(tmp_path):
    events, labels = _worked_example()
    log = tmp_path / "events.jsonl"
    log.write_bytes(b"\n".join(msgspec.json.encode(e) for e in events) + b"\n")
    (tmp_path / "new.yaml").write_text(NEW)
    (tmp_path / "old.yaml").write_text(OLD)
    (tmp_path / "labels.csv").write_text(
        "id,label\n" + "".join(f"{i},{int(bad)}\n" for i, bad in labels.items()) + "nope,1\n"
    )
    runner = CliRunner()
    arguments = ["rules", "backtest", str(tmp_path / "new.yaml"), str(log)]
    result = runner.invoke(
        app,
        [
            *arguments,
            "--against",
            str(tmp_path / "old.yaml"),
            "--labels",
            str(tmp_path / "labels.csv"),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "limits@2 vs limits@1: 4 events, 4 decisions, 0 rejected" in out
    assert "labels: 5 given, 4 on decided events, 1 on no decided event" in out
    assert "candidate rules" in out and "baseline rules" in out
    assert "66.7%" in out and "50.0%" in out and "100.0%" in out
    assert "changed decisions: 1" in out

    (tmp_path / "bad.csv").write_text("id,label\nw1,[maybe]\n")
    refused = runner.invoke(app, [*arguments, "--labels", str(tmp_path / "bad.csv")])
    assert refused.exit_code == 2
    assert "line 2: label='[maybe]'" in refused.output
