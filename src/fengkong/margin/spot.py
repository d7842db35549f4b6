"""Spot cross margin (borrow and repay): interest, margin level and its thresholds.

Binance Margin, margin-mechanics.md §3::

    Margin Level = Total Asset Value / (Total Liabilities + Outstanding Interest)
    Outstanding Interest = Σ loan × hours × hourly rate − paid interest

Interest is simple and hourly: one hour accrues at the moment of borrowing, then one more at
the start of each clock hour while the loan is open (a loan from 13:20 repaid at 14:15 pays two
hours). Interest is charged to the user: rounded up (``CHARGE``) to the asset's units, once, on
the exact sum. Asset values and liabilities are in one valuation asset (BTC at Binance),
valued by the caller.

Thresholds on the margin level (cross 3x, older page): above 2 full function; 1.5–2 no
transfer out; 1.3–1.5 no new borrowing; 1.1–1.3 margin call; at or below 1.1 liquidation.
Cross 5x uses 1.25 for borrowing and 1.16 for the call; both sets are parameters.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from fengkong.model.fixed import CHARGE, div_round

__all__ = [
    "HOUR_MS",
    "MarginLevelState",
    "MarginLevelThresholds",
    "interest_due",
    "interest_hours",
    "margin_level",
    "max_borrowable",
]

HOUR_MS = 3_600_000


def interest_hours(borrowed_at: int, now: int) -> int:
    """Hours charged on a loan taken at ``borrowed_at`` and still open at ``now`` (ms, UTC):
    one at borrowing plus one per clock-hour start in ``(borrowed_at, now]``."""
    if now < borrowed_at:
        raise ValueError(f"now={now!r}: before borrowed_at {borrowed_at!r}")
    return 1 + now // HOUR_MS - borrowed_at // HOUR_MS


def interest_due(principal: int, hourly_rates: Sequence[Fraction]) -> int:
    """Interest in the principal's units for one rate per charged hour (dynamic rates since
    2023-03-01), rounded up once on the exact sum."""
    total = sum(hourly_rates, Fraction(0)) * principal
    return div_round(total.numerator, total.denominator, CHARGE)


def margin_level(assets: Fraction, liabilities: Fraction, interest: Fraction) -> Fraction | None:
    """``assets / (liabilities + interest)``; None without debt (infinitely safe)."""
    debt = liabilities + interest
    if debt <= 0:
        return None
    return assets / debt


class MarginLevelState(enum.StrEnum):
    FULL = "full"
    NO_TRANSFER_OUT = "no_transfer_out"
    NO_BORROW = "no_borrow"
    MARGIN_CALL = "margin_call"
    LIQUIDATION = "liquidation"


@dataclass(frozen=True, slots=True)
class MarginLevelThresholds:
    """Lower bounds of each state (exclusive), cross 3x by default."""

    transfer_out: Fraction = Fraction(2)
    borrow: Fraction = Fraction(3, 2)
    margin_call: Fraction = Fraction(13, 10)
    liquidation: Fraction = Fraction(11, 10)

    def state(self, level: Fraction | None) -> MarginLevelState:
        if level is None or level > self.transfer_out:
            return MarginLevelState.FULL
        if level > self.borrow:
            return MarginLevelState.NO_TRANSFER_OUT
        if level > self.margin_call:
            return MarginLevelState.NO_BORROW
        if level > self.liquidation:
            return MarginLevelState.MARGIN_CALL
        return MarginLevelState.LIQUIDATION


def max_borrowable(
    assets: Fraction, liabilities: Fraction, interest: Fraction, min_level: Fraction
) -> Fraction:
    """The largest new loan ``x`` (its proceeds stay in the account as an asset) keeping
    ``(A + x) / (L + I + x) >= min_level``: ``x = (A − m (L + I)) / (m − 1)``, or 0."""
    if min_level <= 1:
        raise ValueError(f"min_level={min_level!r}: must exceed 1")
    room = (assets - min_level * (liabilities + interest)) / (min_level - 1)
    return max(room, Fraction(0))
