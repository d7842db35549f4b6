"""Tiered margin brackets: notional bracket -> max leverage, maintenance margin rate, amount.

A table is a list of contiguous brackets ``(floor, cap]`` of position notional in settlement
units (the first bracket also holds a notional of 0). Each bracket has a maximum leverage, a
maintenance margin rate ``mmr`` (at :data:`RATE_SCALE` decimals) and a maintenance amount
``cum`` (settlement units) that makes the maintenance margin continuous across brackets:

    MM  = notional × MMR(bracket of notional) − cum(bracket)
    cum_n = floor_n × (MMR_n − MMR_{n−1}) + cum_{n−1},   cum_1 = 0

Source: Binance, "How to calculate liquidation price of USDⓈ-M futures contracts" (the
recurrence and "Maintenance Amount on Level 3 = 250,000 × (1% − 0.5%) + 50 = 1,300 USDT"),
margin-mechanics.md §1.1. Bybit's "MM deduction" and OKX's tiers are the same arithmetic.

A published table's ``cum`` column is re-derived from floors and rates and the table is refused
when they disagree. Every problem of a table is reported at once, each with its path
(``tiers[2].mmr: 400000 < previous 500000``).

Rounding: ``floor × ΔMMR`` is rounded down (``PAYOUT``) when it leaves a remainder, since cum is
a deduction from the margin the user owes; the maintenance margin itself is rounded up
(``CHARGE``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import NamedTuple

from fengkong.ledger.contracts import RATE_SCALE
from fengkong.model.fixed import (
    CHARGE,
    PAYOUT,
    FixedPointError,
    div_round,
    format_units,
    parse_units,
)

__all__ = ["RATE_ONE", "Tier", "TierTable", "TierTableError", "derive_cum"]

RATE_ONE = 10**RATE_SCALE
"""1.0 at the rate scale: ``mmr = 400_000`` is 0.4 %."""


class Tier(NamedTuple):
    """One bracket; money in settlement units, ``mmr`` at :data:`RATE_SCALE` decimals."""

    floor: int
    cap: int
    max_leverage: int
    mmr: int
    cum: int


class TierTableError(ValueError):
    """A tier table with problems; ``problems`` lists every one with its path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def derive_cum(floor: int, mmr: int, previous_mmr: int, previous_cum: int) -> int:
    """``cum_n = floor_n × (MMR_n − MMR_{n−1}) + cum_{n−1}`` in settlement units (Binance)."""
    return div_round(floor * (mmr - previous_mmr), RATE_ONE, PAYOUT) + previous_cum


class TierTable:
    """A validated bracket table of one instrument (see the module docstring).

    ``scale`` is the settlement asset's scale: floors, caps and cums are integers at it.
    """

    __slots__ = ("caps", "scale", "tiers")

    def __init__(self, tiers: Sequence[Tier], scale: int) -> None:
        problems = _problems(tiers)
        if problems:
            raise TierTableError(problems)
        self.tiers: tuple[Tier, ...] = tuple(tiers)
        self.scale = scale
        self.caps = [t.cap for t in self.tiers]
        """Bracket caps, ascending: ``bisect_left(caps, notional)`` is the bracket index."""

    @classmethod
    def parse(
        cls, rows: Sequence[Mapping[str, object]], scale: int, *, path: str = "tiers"
    ) -> TierTable:
        """Build a table from decimal-string rows ``{floor, cap, max_leverage, mmr[, cum]}``.

        A row without ``cum`` gets the derived value; a row with one must equal it. Every
        problem is collected and raised together as a :class:`TierTableError`.
        """
        problems: list[str] = []
        tiers: list[Tier] = []
        previous_mmr = previous_cum = 0
        for i, row in enumerate(rows):
            where = f"{path}[{i}]"
            fields = {
                "floor": (scale, 0, None),
                "cap": (scale, 1, None),
                "max_leverage": (0, 1, None),
                "mmr": (RATE_SCALE, 0, RATE_ONE),
            }
            parsed: dict[str, int] = {}
            for name, (field_scale, low, high) in fields.items():
                try:
                    parsed[name] = parse_units(
                        row.get(name), field_scale, field=f"{where}.{name}", minimum=low,
                        maximum=high,
                    )  # fmt: skip
                except FixedPointError as error:
                    problems.append(str(error))
            if len(parsed) < len(fields):
                continue
            floor, cap, leverage, mmr = (parsed[n] for n in fields)
            cum = derive_cum(floor, mmr, previous_mmr, previous_cum) if tiers else 0
            given = row.get("cum")
            if given is not None:
                try:
                    stated = parse_units(given, scale, field=f"{where}.cum")
                except FixedPointError as error:
                    problems.append(str(error))
                else:
                    if stated != cum:
                        problems.append(
                            f"{where}.cum: {given} disagrees with the recurrence "
                            "floor × (MMR − previous MMR) + previous cum = "
                            f"{format_units(cum, scale)}"
                        )
            tiers.append(Tier(floor, cap, leverage, mmr, cum))
            previous_mmr, previous_cum = mmr, cum
        if problems:
            raise TierTableError(problems)
        return cls(tiers, scale)

    # --- lookups ---------------------------------------------------------------------------

    def index_for(self, notional: int) -> int | None:
        """Index of the bracket ``(floor, cap]`` holding ``notional`` (0 in the first), or
        None beyond the last cap."""
        i = bisect_left(self.caps, notional)
        return i if i < len(self.caps) else None

    def tier_for(self, notional: int) -> Tier | None:
        i = self.index_for(notional)
        return None if i is None else self.tiers[i]

    def index_for_exact(self, notional: Fraction) -> int | None:
        """:meth:`index_for` for an exact rational notional in whole settlement-asset units."""
        units = notional * 10**self.scale
        i = bisect_left(self.caps, units)
        return i if i < len(self.caps) else None

    def maintenance_margin(self, notional: int) -> int | None:
        """``notional × MMR − cum`` in settlement units, rounded up; None beyond the table."""
        tier = self.tier_for(notional)
        if tier is None:
            return None
        return div_round(notional * tier.mmr, RATE_ONE, CHARGE) - tier.cum

    def max_leverage(self, notional: int) -> int:
        """The bracket's maximum leverage; 0 beyond the table (no leverage allowed)."""
        tier = self.tier_for(notional)
        return 0 if tier is None else tier.max_leverage

    # --- exact views (liquidation solver) --------------------------------------------------

    def mmr(self, index: int) -> Fraction:
        return Fraction(self.tiers[index].mmr, RATE_ONE)

    def cum(self, index: int) -> Fraction:
        return Fraction(self.tiers[index].cum, 10**self.scale)


def _problems(tiers: Sequence[Tier]) -> list[str]:
    problems: list[str] = []
    if not tiers:
        return ["tiers: empty"]
    if tiers[0].floor != 0:
        problems.append(f"tiers[0].floor: {tiers[0].floor} must be 0")
    previous: Tier | None = None
    for i, tier in enumerate(tiers):
        where = f"tiers[{i}]"
        if tier.cap <= tier.floor:
            problems.append(f"{where}.cap: {tier.cap} <= floor {tier.floor}")
        if not 0 <= tier.mmr <= RATE_ONE:
            problems.append(f"{where}.mmr: {tier.mmr} outside 0..{RATE_ONE}")
        if tier.max_leverage < 1:
            problems.append(f"{where}.max_leverage: {tier.max_leverage} < 1")
        if previous is not None:
            if tier.floor != previous.cap:
                problems.append(f"{where}.floor: {tier.floor} != previous cap {previous.cap}")
            if tier.mmr < previous.mmr:
                problems.append(f"{where}.mmr: {tier.mmr} < previous {previous.mmr}")
            if tier.max_leverage > previous.max_leverage:
                problems.append(
                    f"{where}.max_leverage: {tier.max_leverage} > previous {previous.max_leverage}"
                )
            expected = derive_cum(tier.floor, tier.mmr, previous.mmr, previous.cum)
            if tier.cum != expected:
                problems.append(f"{where}.cum: {tier.cum} != derived {expected}")
        elif tier.cum != 0:
            problems.append(f"{where}.cum: {tier.cum} must be 0 in the first bracket")
        previous = tier
    return problems
