"""From evaluator results to a :class:`~fengkong.rules.events.Decision`.

Per pack: the active rules that fired give their outcomes, scores, holds and reason codes;
the sum of their scores is compared with the pack's score bands; an active rule whose
evaluation raised counts as ``review`` (fail closed). The decision takes the most severe
outcome over every pack. The shadow outcome is computed the same way with shadow rules
counted as active, so a backtest or a dashboard shows what promoting them would change.

Resolution reads one *row* per fired record, ``(pack, active, rank, score, reason, hold,
error)``: the rows of a pack's rules are built once when the pack is bound
(:func:`rule_row`), so a decision adds a prebuilt tuple per fired rule and never looks
outcomes up; only a record of a failed evaluation gets its row at decision time
(:func:`fired_row`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fengkong.rules.events import Decision, FiredRule
from fengkong.rules.outcomes import SEVERITY, Outcome

if TYPE_CHECKING:
    from fengkong.rules.pack import CompiledPack, KindPlan, RuleSpec

RULE_ERROR = "rule_error"
NO_PACK = "no_rule_pack"


def trace(pack: CompiledPack, plan: KindPlan, hits, errors, values: tuple) -> list[FiredRule]:
    """The fired-rule records of one pack's evaluation, in rule order."""
    label = pack.plan.label
    if hits is None:  # a hoisted read raised: every rule of this kind is unknown
        return [
            FiredRule(
                pack=label,
                rule="*",
                mode="active",
                outcome=Outcome.REVIEW,
                score=0,
                reason=RULE_ERROR,
                hold_hours=0,
                values=[],
                error=f"{type(errors).__name__}: {errors}",
            )
        ]
    index_of = {local: i for i, local in enumerate(plan.reads.labels)}
    failed = {index: exc for index, exc in errors or ()}
    fired = []
    for index in sorted({*hits, *failed}):
        rule = plan.rules[index]
        exc = failed.get(index)
        fired.append(
            FiredRule(
                pack=label,
                rule=rule.name,
                mode=rule.mode,
                outcome=rule.outcome,
                score=rule.score,
                reason=rule.reason,
                hold_hours=rule.hold_hours,
                values=[
                    [plan.reads.labels[local], values[index_of[local]]]
                    for local in plan.traces[index]
                ],
                error="" if exc is None else f"{type(exc).__name__}: {exc}",
            )
        )
    return fired


def _band(outcome: Outcome, scores: dict[str, int], scoring: dict[str, list], reasons: list[str]):
    """``outcome`` raised to the highest score band each pack's score reaches."""
    for pack, score in scores.items():
        for min_score, band in reversed(scoring.get(pack, ())):
            if score >= min_score:
                if SEVERITY[band] > SEVERITY[outcome]:
                    outcome = band
                reasons.append(f"score_at_least_{min_score}")
                break
    return outcome


def rule_row(pack: str, rule: RuleSpec) -> tuple:
    """The decision row of a rule of ``pack`` (its label) that fired without error."""
    hold = rule.hold_hours if rule.outcome is Outcome.HOLD_WITHDRAWAL else 0
    return (
        pack,
        rule.mode == "active",
        SEVERITY[rule.outcome],
        rule.score,
        rule.reason,
        hold,
        False,
    )


def fired_row(record: FiredRule) -> tuple:
    """The decision row of a traced record (an erring one counts as ``review``)."""
    if record.error:
        return (record.pack, record.mode == "active", _REVIEW, 0, RULE_ERROR, 0, True)
    hold = record.hold_hours if record.outcome is Outcome.HOLD_WITHDRAWAL else 0
    return (
        record.pack,
        record.mode == "active",
        SEVERITY[record.outcome],
        record.score,
        record.reason,
        hold,
        False,
    )


def _resolve(rows: list[tuple], scoring: dict[str, list]):
    """Outcome, hold hours, score and reason codes of the active rules, and the outcome
    with the shadow rules counted too, in one pass over the fired rows."""
    active = shadow = 0
    hold = 0
    reasons: list[str] = []
    scores: dict[str, int] = {}
    shadow_scores: dict[str, int] = {}
    for pack, is_active, rank, score, reason, rule_hold, error in rows:
        if not error:
            shadow_scores[pack] = shadow_scores.get(pack, 0) + score
        if rank > shadow:
            shadow = rank
        if not is_active:
            continue
        if rank > active:
            active = rank
        if not error:
            scores[pack] = scores.get(pack, 0) + score
            if rule_hold > hold:
                hold = rule_hold
        if reason not in reasons:
            reasons.append(reason)
    outcome = _band(_OUTCOMES[active], scores, scoring, reasons) if scores else _OUTCOMES[active]
    shadow_outcome = _OUTCOMES[shadow]
    if shadow_scores:
        shadow_outcome = _band(shadow_outcome, shadow_scores, scoring, [])
    if SEVERITY[outcome] > SEVERITY[shadow_outcome]:
        shadow_outcome = outcome
    return outcome, hold, sum(scores.values()), reasons, shadow_outcome


_OUTCOMES = list(Outcome)
_REVIEW = SEVERITY[Outcome.REVIEW]


def assemble(
    seq: int,
    event_id: str,
    event_type: str,
    accounts: list[str],
    packs: list[str],
    fired: list[FiredRule],
    rows: list[tuple],
    scoring: dict[str, list],
) -> Decision:
    """The decision over the fired rules of every evaluated pack (``rows``: their decision
    rows, in the same order)."""
    if not packs:
        return Decision(
            seq=seq,
            id=event_id,
            event_type=event_type,
            accounts=accounts,
            outcome=Outcome.REVIEW,
            hold_hours=0,
            score=0,
            reasons=[NO_PACK],
            shadow_outcome=Outcome.REVIEW,
            packs=[],
            fired=[],
        )
    outcome, hold, score, reasons, shadow_outcome = _resolve(rows, scoring)
    return Decision(
        seq=seq,
        id=event_id,
        event_type=event_type,
        accounts=accounts,
        outcome=outcome,
        hold_hours=hold,
        score=score,
        reasons=reasons,
        shadow_outcome=shadow_outcome,
        packs=packs,
        fired=fired,
    )
