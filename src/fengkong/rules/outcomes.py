"""Rule outcomes and their severity order."""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """What a rule asks for; a decision takes the most severe outcome of its fired rules.

    Severity, lowest first: ``allow`` < ``hold_withdrawal`` (an automatic delay of N hours,
    released without a person) < ``review`` (waits for a person, who may still block) <
    ``block`` (refuse this action) < ``freeze_account`` (refuse and freeze the account).
    """

    ALLOW = "allow"
    HOLD_WITHDRAWAL = "hold_withdrawal"
    REVIEW = "review"
    BLOCK = "block"
    FREEZE_ACCOUNT = "freeze_account"


SEVERITY: dict[Outcome, int] = {outcome: rank for rank, outcome in enumerate(Outcome)}


def most_severe(a: Outcome, b: Outcome) -> Outcome:
    """The more severe of two outcomes."""
    return a if SEVERITY[a] >= SEVERITY[b] else b
