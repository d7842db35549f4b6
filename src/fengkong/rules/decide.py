"""From evaluator results to a :class:`~fengkong.rules.events.Decision`.

Per pack: the active rules that fired give their outcomes, scores, holds and reason codes;
the sum of their scores is compared with the pack's score bands; an active rule whose
evaluation raised counts as ``review`` (fail closed). The decision takes the most severe
outcome over every pack. The shadow outcome is computed the same way with shadow rules
counted as active, so a backtest or a dashboard shows what promoting them would change.
"""

from __future__ import annotations

from fengkong.rules.events import Decision, FiredRule
from fengkong.rules.outcomes import SEVERITY, Outcome
from fengkong.rules.pack import CompiledPack, KindPlan

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


def _resolve(fired: list[FiredRule], scoring: dict[str, list]):
    """Outcome, hold hours, score and reason codes of the active rules, and the outcome
    with the shadow rules counted too, in one pass."""
    active = shadow = 0
    hold = 0
    reasons: list[str] = []
    scores: dict[str, int] = {}
    shadow_scores: dict[str, int] = {}
    for rule in fired:
        if rule.error:
            counted, reason = Outcome.REVIEW, RULE_ERROR
        else:
            counted, reason = rule.outcome, rule.reason
            shadow_scores[rule.pack] = shadow_scores.get(rule.pack, 0) + rule.score
        rank = SEVERITY[counted]
        shadow = max(shadow, rank)
        if rule.mode != "active":
            continue
        active = max(active, rank)
        if not rule.error:
            scores[rule.pack] = scores.get(rule.pack, 0) + rule.score
            if counted is Outcome.HOLD_WITHDRAWAL:
                hold = max(hold, rule.hold_hours)
        if reason not in reasons:
            reasons.append(reason)
    outcome = _band(_OUTCOMES[active], scores, scoring, reasons)
    shadow_outcome = _band(_OUTCOMES[shadow], shadow_scores, scoring, [])
    if SEVERITY[outcome] > SEVERITY[shadow_outcome]:
        shadow_outcome = outcome
    return outcome, hold, sum(scores.values()), reasons, shadow_outcome


_OUTCOMES = list(Outcome)


def assemble(
    seq: int,
    event_id: str,
    event_type: str,
    accounts: list[str],
    packs: list[str],
    fired: list[FiredRule],
    scoring: dict[str, list],
) -> Decision:
    """The decision over the fired rules of every evaluated pack."""
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
    outcome, hold, score, reasons, shadow_outcome = _resolve(fired, scoring)
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
