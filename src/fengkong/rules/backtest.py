"""Backtests: run a candidate pack over recorded events beside the pack it would replace.

Two arms see the same events through their own rules component (the ledger is not
involved: a recorded ``Fill`` or ``Deposit`` is taken as having happened):

* the **candidate** arm loads the candidate pack first and ignores the log's own loads and
  removals of a pack with the same name;
* the **baseline** arm either loads ``baseline_text`` the same way, or, without one, follows
  the log's pack loads exactly: it decides as production did.

List changes and every other pack's loads apply to both arms. The report counts decisions
per outcome in each arm; per rule of each arm (active and shadow) its hits, the outcomes of
the decisions it fired in, and how many of those the other arm decided otherwise
(*changed*); and every decision whose outcome changed, with examples.

With labels (:mod:`fengkong.rules.labels`: event id -> positive or negative), each labeled
decision also scores both arms, in the standard confusion-matrix terms (Manning, Raghavan
and Schuetze, *Introduction to Information Retrieval*, 2008, section 8.3):

* a **pack arm** flags a decision whose outcome is not ``allow`` (a hold, a review, a block
  or a freeze all stop the request); ``candidate+shadow`` flags by the shadow outcome;
* a **rule** flags the decisions it fired in, out of the labeled decisions of its event kind
  that its pack version evaluated;

``precision = TP / (TP + FP)`` (of what was flagged, the share that was bad) and
``recall = TP / (TP + FN)`` (of what was bad, the share that was flagged), each undefined
(``None``) when its denominator is 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from fengkong.model.events import Event, Rejected
from fengkong.rules.component import RulesComponent
from fengkong.rules.events import Decision, RulePackLoaded, RulePackRemoved
from fengkong.rules.outcomes import Outcome
from fengkong.rules.pack import load_pack

MAX_EXAMPLES = 20


@dataclass
class Confusion:
    """Labeled decisions by flagged or not and positive or not (see the module docstring)."""

    tp: int = 0  # flagged, positive
    fp: int = 0  # flagged, negative
    fn: int = 0  # not flagged, positive
    tn: int = 0  # not flagged, negative

    def add(self, flagged: bool, positive: bool) -> None:
        if flagged:
            if positive:
                self.tp += 1
            else:
                self.fp += 1
        elif positive:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float | None:
        """``TP / (TP + FP)``; ``None`` when nothing labeled was flagged."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """``TP / (TP + FN)``; ``None`` when no labeled decision was positive."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


@dataclass
class RuleCounts:
    pack: str  # name@version
    rule: str
    mode: str
    on: str  # the event kind the rule decides
    fired: int = 0
    errors: int = 0
    changed: int = 0  # decisions it fired in that the other arm decided otherwise
    outcomes: Counter = field(default_factory=Counter)  # final decision outcome when fired
    true_positives: int = 0  # labeled positive decisions it fired in
    false_positives: int = 0  # labeled negative decisions it fired in


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
    rules: dict[tuple[str, str], RuleCounts] = field(default_factory=dict)  # the candidate's
    baseline_rules: dict[tuple[str, str], RuleCounts] = field(default_factory=dict)
    changed: Counter = field(default_factory=Counter)  # (baseline, candidate) -> count
    examples: list[tuple[str, str, str, list[str]]] = field(default_factory=list)
    labels: int = 0  # labels given
    labeled: int = 0  # decisions with a label (the rest of the labels matched no decision)
    scores: dict[str, Confusion] = field(default_factory=dict)  # per arm, with labels only
    # (arm, pack label, event kind, positive) -> labeled decisions that pack version evaluated
    evaluated: Counter = field(default_factory=Counter)

    def rule_confusion(self, counts: RuleCounts, arm: str) -> Confusion:
        """The rule's confusion matrix over the labeled decisions its pack version evaluated
        for its event kind (``arm``: ``candidate`` or ``baseline``)."""
        positives = self.evaluated[(arm, counts.pack, counts.on, True)]
        negatives = self.evaluated[(arm, counts.pack, counts.on, False)]
        return Confusion(
            tp=counts.true_positives,
            fp=counts.false_positives,
            fn=positives - counts.true_positives,
            tn=negatives - counts.false_positives,
        )


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


def _register(rules: dict[tuple[str, str], RuleCounts], arm: _Arm) -> None:
    """Every enabled rule of the arm's current packs, so that one that never fires is listed."""
    for pack in arm.component.packs.values():
        for rule in pack.plan.rules:
            key = (pack.plan.label, rule.name)
            if rule.mode != "disabled" and key not in rules:
                rules[key] = RuleCounts(pack.plan.label, rule.name, rule.mode, rule.on)


def _count(
    rules: dict[tuple[str, str], RuleCounts],
    decision: Decision,
    changed: bool,
    label: bool | None,
) -> None:
    """Fold one arm's decision into its rules' counts."""
    for fired in decision.fired:
        counts = rules.get((fired.pack, fired.rule))
        if counts is None:
            counts = rules[(fired.pack, fired.rule)] = RuleCounts(
                fired.pack, fired.rule, fired.mode, decision.event_type
            )
        counts.fired += 1
        counts.errors += bool(fired.error)
        counts.changed += changed
        counts.outcomes[decision.outcome] += 1
        if label is True:
            counts.true_positives += 1
        elif label is False:
            counts.false_positives += 1


def _score(
    report: BacktestReport, arm: str, decision: Decision | None, flagged: bool, positive: bool
) -> None:
    report.scores[arm].add(flagged, positive)
    if decision is not None and arm != "candidate+shadow":
        for pack in decision.packs:
            report.evaluated[(arm, pack, decision.event_type, positive)] += 1


def run_backtest(
    candidate_text: str,
    events: Iterable[Event],
    baseline_text: str | None = None,
    progress: Callable[[], None] | None = None,
    labels: Mapping[str, bool] | None = None,
) -> BacktestReport:
    """Run both arms over ``events`` (``progress`` is called after each event); ``labels``:
    event id -> positive, for precision and recall (see the module docstring)."""
    candidate = _Arm(candidate_text)
    baseline = _Arm(baseline_text)
    plan = load_pack(candidate_text)
    report = BacktestReport(
        candidate=plan.label,
        baseline=load_pack(baseline_text).label if baseline_text else "as recorded",
        labels=len(labels or {}),
    )
    if labels is not None:
        report.scores = {arm: Confusion() for arm in ("baseline", "candidate", "candidate+shadow")}
    _register(report.rules, candidate)
    _register(report.baseline_rules, baseline)
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
        before = old.outcome if old is not None else None
        label = labels.get(new.id) if labels is not None else None
        _count(report.rules, new, before != new.outcome, label)
        if old is not None:
            report.baseline_outcomes[old.outcome] += 1
            _count(report.baseline_rules, old, before != new.outcome, label)
        if label is not None:
            report.labeled += 1
            _score(report, "candidate", new, new.outcome != Outcome.ALLOW, label)
            _score(report, "candidate+shadow", new, new.shadow_outcome != Outcome.ALLOW, label)
            _score(report, "baseline", old, before not in (None, Outcome.ALLOW), label)
        if before != new.outcome:
            report.changed[(str(before), str(new.outcome))] += 1
            if len(report.examples) < MAX_EXAMPLES:
                report.examples.append(
                    (new.id, str(before), str(new.outcome), [f.rule for f in new.fired])
                )
    _register(report.baseline_rules, baseline)  # the last recorded version's silent rules
    return report
