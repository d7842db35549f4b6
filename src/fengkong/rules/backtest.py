"""Backtests: run a candidate pack over recorded events beside the pack it would replace.

Two arms see the same events through their own rules component (the ledger is not
involved: a recorded ``Fill`` or ``Deposit`` is taken as having happened):

* the **candidate** arm loads the candidate pack first and ignores the log's own loads and
  removals of a pack with the same name;
* the **baseline** arm either loads ``baseline_text`` the same way, or, without one, follows
  the log's pack loads exactly: it decides as production did.

List changes and every other pack's loads apply to both arms. The report counts decisions
per outcome in each arm, per candidate rule (active and shadow) the outcomes of the
decisions it fired in, and every decision whose outcome changed, with examples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fengkong.model.events import Event, Rejected
from fengkong.rules.component import RulesComponent
from fengkong.rules.events import Decision, RulePackLoaded, RulePackRemoved
from fengkong.rules.pack import load_pack

MAX_EXAMPLES = 20


@dataclass
class RuleCounts:
    pack: str
    rule: str
    mode: str
    fired: int = 0
    errors: int = 0
    outcomes: Counter = field(default_factory=Counter)  # final decision outcome when fired


@dataclass
class BacktestReport:
    candidate: str
    baseline: str
    events: int = 0
    decisions: int = 0
    rejected: int = 0
    outcomes: Counter = field(default_factory=Counter)
    baseline_outcomes: Counter = field(default_factory=Counter)
    shadow_outcomes: Counter = field(default_factory=Counter)
    rules: dict[tuple[str, str], RuleCounts] = field(default_factory=dict)
    changed: Counter = field(default_factory=Counter)  # (baseline, candidate) -> count
    examples: list[tuple[str, str, str, list[str]]] = field(default_factory=list)


class _Arm:
    def __init__(self, pinned_text: str | None) -> None:
        self.component = RulesComponent()
        self.pinned = None
        if pinned_text is not None:
            self.pinned = load_pack(pinned_text).name
            loaded = self.component.apply(
                RulePackLoaded(seq=0, id="backtest", ts=0, pack_yaml=pinned_text, author="backtest")
            )
            if isinstance(loaded[0], Rejected):
                raise ValueError(loaded[0].message)

    def apply(self, event: Event) -> list:
        if self.pinned is not None:
            if isinstance(event, RulePackRemoved) and event.pack == self.pinned:
                return []
            if isinstance(event, RulePackLoaded) and _pack_name(event) == self.pinned:
                return []
        return self.component.apply(event)


def _decision(outputs: list) -> Decision | None:
    return next((o for o in outputs if isinstance(o, Decision)), None)


def _pack_name(event: RulePackLoaded) -> str | None:
    try:
        return load_pack(event.pack_yaml).name
    except ValueError:
        return None


def run_backtest(
    candidate_text: str,
    events: Iterable[Event],
    baseline_text: str | None = None,
    progress: Callable[[], None] | None = None,
) -> BacktestReport:
    """Run both arms over ``events`` (``progress`` is called after each event)."""
    candidate = _Arm(candidate_text)
    baseline = _Arm(baseline_text)
    plan = load_pack(candidate_text)
    report = BacktestReport(
        candidate=plan.label,
        baseline=load_pack(baseline_text).label if baseline_text else "as recorded",
    )
    for pack in candidate.component.packs.values():
        for rule in pack.plan.rules:
            if rule.mode != "disabled":
                report.rules[(pack.plan.label, rule.name)] = RuleCounts(
                    pack.plan.label, rule.name, rule.mode
                )
    for event in events:
        report.events += 1
        outputs = candidate.apply(event)
        report.rejected += any(isinstance(o, Rejected) for o in outputs)
        new = _decision(outputs)
        old = _decision(baseline.apply(event))
        if progress is not None:
            progress()
        if new is None:
            continue
        report.decisions += 1
        report.outcomes[new.outcome] += 1
        report.shadow_outcomes[new.shadow_outcome] += 1
        for fired in new.fired:
            counts = report.rules.get((fired.pack, fired.rule))
            if counts is None:
                counts = report.rules[(fired.pack, fired.rule)] = RuleCounts(
                    fired.pack, fired.rule, fired.mode
                )
            counts.fired += 1
            counts.errors += bool(fired.error)
            counts.outcomes[new.outcome] += 1
        before = old.outcome if old is not None else None
        if old is not None:
            report.baseline_outcomes[old.outcome] += 1
        if before != new.outcome:
            report.changed[(str(before), str(new.outcome))] += 1
            if len(report.examples) < MAX_EXAMPLES:
                report.examples.append(
                    (new.id, str(before), str(new.outcome), [f.rule for f in new.fired])
                )
    return report
