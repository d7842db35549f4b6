"""``fengkong rules check | test | backtest``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from fengkong.engine.core import register_event_kinds
from fengkong.model.events import json_event_decoder
from fengkong.rules.backtest import run_backtest
from fengkong.rules.cases import CasesError, load_cases, run_cases
from fengkong.rules.errors import PackError
from fengkong.rules.features import describe
from fengkong.rules.labels import LabelsError, parse_labels
from fengkong.rules.outcomes import Outcome
from fengkong.rules.pack import build_stores, load_pack

rules_app = typer.Typer(help="Rule packs: check, unit-test and backtest.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        errors.print(f"[red]{path}: {exc.strerror}[/red]")
        raise typer.Exit(2) from None


def _load(path: Path):
    register_event_kinds()  # a pack may decide any kind the engine accepts (OrderRequest ...)
    try:
        return load_pack(_read(path))
    except PackError as exc:
        errors.print(f"[red]{path}: {len(exc.problems)} problem(s)[/red]")
        for problem in exc.problems:
            errors.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(1) from None


@rules_app.command("check")
def check(
    pack: Path,
    code: Annotated[bool, typer.Option(help="Print the generated Python code.")] = False,
) -> None:
    """Validate a pack: every problem is listed with its path and position."""
    plan = _load(pack)
    stores, _ = build_stores(plan, None)
    compiled = plan.bind(stores, {name: {} for name in plan.lists}, {})
    console.print(f"[green]{plan.label}[/green] ok: {pack}")
    table = Table("rule", "on", "mode", "outcome", "score", "reason")
    for rule in plan.rules:
        outcome = rule.outcome + (f" {rule.hold_hours}h" if rule.hold_hours else "")
        table.add_row(rule.name, rule.on, rule.mode, outcome, str(rule.score), rule.reason)
    console.print(table)
    features = Table("feature", "definition")
    for name, spec in plan.features.items():
        features.add_row(name, describe(spec))
    if plan.features:
        console.print(features)
    for name, spec in plan.lists.items():
        console.print(f"list {name}: {spec.kind} of {spec.value_kind}, {len(spec.entries)} seeded")
    if code:
        for function in [*compiled.evaluators.values(), *compiled.updaters.values()]:
            console.print(function.source, markup=False, highlight=False)


@rules_app.command("test")
def test(pack: Path, cases: Path) -> None:
    """Run the expected decisions of CASES.yaml against PACK.yaml."""
    plan = _load(pack)
    try:
        loaded = load_cases(_read(cases))
    except (CasesError, ValueError) as exc:
        errors.print(f"[red]{cases}: {exc}[/red]")
        raise typer.Exit(2) from None
    results = run_cases(plan.source, loaded)
    for result in results:
        mark = "[green]pass[/green]" if result.passed else "[red]FAIL[/red]"
        console.print(f"{mark} {result.name} ({result.checked} expectation(s))")
        for failure in result.failures:
            console.print(f"     {failure}", markup=False, highlight=False)
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@rules_app.command("backtest")
def backtest(
    pack: Path,
    events: Path,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            "--baseline",
            help="Compare with this pack (OLD.yaml) instead of the log's own versions.",
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="CSV of event ids labeled 1 (bad) or 0 (good): precision and recall per "
            "rule and per arm."
        ),
    ] = None,
) -> None:
    """Run PACK.yaml over recorded EVENTS.jsonl beside the version it would replace."""
    plan = _load(pack)
    baseline_text = _load(against).source if against else None
    known = None
    if labels is not None:
        try:
            known = parse_labels(_read(labels))
        except LabelsError as exc:
            message = escape(f"{labels}: {exc}")
            errors.print(f"[red]{message}[/red]", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    decoder = json_event_decoder()
    size = os.path.getsize(events)

    def read(advance):
        with events.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                advance(len(line))
                if line.strip():
                    try:
                        yield decoder.decode(line)
                    except msgspec.DecodeError as exc:
                        errors.print(f"[red]{events}:{number}: {exc}[/red]")
                        raise typer.Exit(2) from None

    columns = [TextColumn("backtest"), BarColumn(), TextColumn("{task.percentage:>5.1f}%")]
    with Progress(*columns, TimeRemainingColumn(), console=errors) as progress:
        task = progress.add_task("events", total=size)
        report = run_backtest(
            plan.source,
            read(lambda n: progress.advance(task, n)),
            baseline_text,
            labels=known,
        )
    console.print(
        f"{report.candidate} vs {report.baseline}: {report.events} events, "
        f"{report.decisions} decisions, {report.rejected} rejected"
    )
    outcomes = Table("outcome", "baseline", "candidate", "candidate+shadow")
    for outcome in Outcome:
        outcomes.add_row(
            outcome,
            str(report.baseline_outcomes[outcome]),
            str(report.outcomes[outcome]),
            str(report.shadow_outcomes[outcome]),
        )
    console.print(outcomes)
    if known is not None:
        console.print(
            f"labels: {report.labels} given, {report.labeled} on decided events, "
            f"{report.labels - report.labeled} on no decided event"
        )
        scores = Table("arm", "flagged", "TP", "FP", "FN", "TN", "precision", "recall")
        for arm, matrix in report.scores.items():
            scores.add_row(arm, str(matrix.tp + matrix.fp), *_confusion_cells(matrix))
        console.print(scores)
    for title, arm, rules in (
        ("candidate rules", "candidate", report.rules),
        ("baseline rules", "baseline", report.baseline_rules),
    ):
        console.print(title)
        console.print(_rule_table(report, arm, rules, labeled=known is not None))
    changed = Table("baseline", "candidate", "decisions")
    for (before, after), count in sorted(report.changed.items()):
        changed.add_row(before, after, str(count))
    console.print(f"changed decisions: {sum(report.changed.values())}")
    if report.changed:
        console.print(changed)
        examples = Table("event id", "baseline", "candidate", "rules fired")
        for event_id, before, after, fired in report.examples:
            examples.add_row(event_id, before, after, ", ".join(fired))
        console.print(examples)


def _rule_table(report, arm: str, rules: dict, labeled: bool) -> Table:
    """Per rule: hits, errors, decisions changed, the outcomes it fired in, and with labels
    its TP / FP / FN, precision and recall."""
    extra = ("TP", "FP", "FN", "precision", "recall") if labeled else ()
    table = Table("pack", "rule", "mode", "fired", "errors", "changed", *Outcome, *extra)
    for counts in rules.values():
        row = [counts.pack, counts.rule, counts.mode, str(counts.fired), str(counts.errors)]
        row += [str(counts.changed), *(str(counts.outcomes[o]) for o in Outcome)]
        if labeled:
            cells = _confusion_cells(report.rule_confusion(counts, arm))
            row += [*cells[:3], *cells[4:]]  # a rule's TN is most of the log: left out
        table.add_row(*row)
    return table


def _confusion_cells(matrix) -> list[str]:
    """TP, FP, FN, TN, precision and recall as table cells (``-`` for an undefined share)."""
    shares = ["-" if v is None else f"{v:.1%}" for v in (matrix.precision, matrix.recall)]
    return [str(matrix.tp), str(matrix.fp), str(matrix.fn), str(matrix.tn), *shares]
