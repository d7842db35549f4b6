"""Events and outputs of the liquidation engine (:mod:`fengkong.liquidation.component`).

Inputs: :class:`LiquidationConfigured` (the policy), and the venue's answers to the
liquidation orders the engine sends — :class:`LiquidationFill` (a child fill) and
:class:`LiquidationOrderDone` (the order is finished; what is left unfilled is deleveraged).

Outputs, in the order a liquidation produces them: :class:`LiquidationTriggered` (a margin
group confirmed at or below maintenance by the exact check), :class:`LiquidationOrdersCancelled`
(stage 1), :class:`PartialLiquidation` (stage 2, a step down the tier table),
:class:`PositionTakenOver` (stage 3, at the bankruptcy price), :class:`LiquidationOrder` (the
clearing account's order to the venue), :class:`InsuranceFundChanged` (every movement of the
fund, its history), :class:`AutoDeleveraged` and :class:`SocializedLoss`. Amounts are integer
units of the named asset; prices and quantities integer units of the instrument.
"""

from __future__ import annotations

import enum

import msgspec

from fengkong.model.enums import PositionSide, Side
from fengkong.model.events import Event, Output, register_event, register_output

__all__ = [
    "AutoDeleveraged",
    "FundReason",
    "InsuranceFundChanged",
    "LiquidationConfigured",
    "LiquidationDeferred",
    "LiquidationFill",
    "LiquidationOrder",
    "LiquidationOrderDone",
    "LiquidationOrdersCancelled",
    "LiquidationTriggered",
    "PartialLiquidation",
    "PositionTakenOver",
    "SocializedLoss",
    "SpotMarginLiquidated",
]


class FundReason(enum.StrEnum):
    """Why the insurance fund moved."""

    CLEARANCE_FEE = "clearance_fee"
    """The clearance fee of a liquidation (paid in)."""
    BAD_DEBT = "bad_debt"
    """A liquidated account's loss beyond its margin (drawn)."""
    CLEARING_GAIN = "clearing_gain"
    """The venue closed a taken-over position better than its takeover price (paid in)."""
    CLEARING_LOSS = "clearing_loss"
    """The venue closed it worse (drawn)."""
    SPOT_LIQUIDATION = "spot_liquidation"
    """Spot margin: collateral bought from a liquidated account at the mark (paid in, in the
    collateral asset), the debt asset paid for it (drawn), bad debt it covered (drawn)."""


@register_event
class LiquidationConfigured(Event, tag=True):
    """The liquidation policy (replaces the previous one from the next mark tick).

    ``clearance_rate``: the clearance fee of a takeover, ``qty × price × rate`` (Binance's
    historical 0.5 %, margin-mechanics.md §1.4), paid to the insurance fund from what the
    account has left at the bankruptcy price — the tick-rounding dust, since the bankruptcy
    price already hands the fund the account's margin. ``partial_fee_rate``: the fee of a
    step-down, which is a reducing order at the mark (default: a taker fee, a chosen default;
    a 0.5 % fee would cost about what a step from the first bracket saves). ``fund_slippage``:
    how far past the takeover price the fund lets a liquidation order fill, as a fraction of
    it (also bounded by the fund's balance less what the other open orders may cost); what
    the venue cannot fill within it is deleveraged (a chosen default). ``max_per_tick``:
    accounts liquidated per event, the rest queued worst ratio first. ``partial``: step
    positions down the tier table before taking them over (Bybit / OKX, §4.1, §4.2). ``adl``:
    deleverage what the fund cannot close; False socializes the loss instead. ``exempt``:
    accounts never liquidated automatically (the exchange's own market-making and hedging
    accounts, handled by its desk); they are still screened.
    """

    clearance_rate: str = "0.005"
    partial_fee_rate: str = "0.0005"
    fund_slippage: str = "0.05"
    max_per_tick: int = 1_000
    partial: bool = True
    adl: bool = True
    exempt: list[str] = msgspec.field(default_factory=list)


@register_event
class LiquidationFill(Event, tag=True):
    """The venue filled ``qty`` of liquidation order ``order_id`` at ``price`` against
    ``counterparty`` (who trades the opposite side on its ``counterparty_side`` leg)."""

    order_id: str
    price: str
    qty: str
    counterparty: str
    counterparty_side: PositionSide = PositionSide.BOTH


@register_event
class LiquidationOrderDone(Event, tag=True):
    """The venue finished liquidation order ``order_id`` (its remainder will not fill)."""

    order_id: str


@register_output
class LiquidationTriggered(Output, tag=True):
    """A margin group at or below maintenance by the exact check, as its liquidation starts:
    the account's cross group in ``asset`` (``symbol`` None) or one isolated position.
    ``maintenance`` None: a notional beyond its tier table."""

    account: str
    asset: str
    symbol: str | None
    side: PositionSide | None
    equity: int
    maintenance: int | None


@register_output
class LiquidationDeferred(Output, tag=True):
    """The per-tick budget was spent: ``queued`` accounts wait for the next tick."""

    queued: int


@register_output
class LiquidationOrdersCancelled(Output, tag=True):
    account: str
    order_ids: list[str]


@register_output
class PartialLiquidation(Output, tag=True):
    """``qty`` (signed, reducing) of the position taken over at the mark ``price`` to bring
    it from bracket ``from_bracket`` to ``to_bracket``; ``fee`` the clearance fee paid."""

    account: str
    symbol: str
    side: PositionSide
    qty: int
    price: int
    fee: int
    from_bracket: int
    to_bracket: int


@register_output
class PositionTakenOver(Output, tag=True):
    """The whole leg (``qty`` signed, the position before) moved to the clearing account at
    the bankruptcy ``price``; ``shortfall`` the loss the account could not pay, of which the
    fund covered ``insurance`` and ``socialized`` was left with the settlement account."""

    account: str
    symbol: str
    side: PositionSide
    qty: int
    price: int
    fee: int
    shortfall: int
    insurance: int
    socialized: int


@register_output
class LiquidationOrder(Output, tag=True):
    """An order of the clearing account to the venue: ``side`` ``qty`` of ``symbol``, no
    worse than ``limit_price`` (None: no limit). ``reference_price`` is the clearing leg's
    break-even (its takeover price); the limit is the worst price the fund can pay for, and
    no further than ``fund_slippage`` past the reference (BitMEX: the fund aggresses in the
    market, §7)."""

    order_id: str
    symbol: str
    side: Side
    qty: int
    limit_price: int | None
    reference_price: int


@register_output
class InsuranceFundChanged(Output, tag=True):
    """One entry of the fund's history: ``amount`` > 0 paid in, < 0 drawn; ``balance`` after."""

    asset: str
    reason: FundReason
    amount: int
    balance: int


@register_output
class AutoDeleveraged(Output, tag=True):
    """``qty`` (signed, reducing) of ``account``'s leg closed at ``price`` against the
    clearing account; ``lights`` its ADL indicator (1–5) when it was selected."""

    symbol: str
    account: str
    side: PositionSide
    qty: int
    price: int
    pnl: int
    lights: int


@register_output
class SpotMarginLiquidated(Output, tag=True):
    """A spot cross-margin account liquidated from margin level ``level_before`` (at or below
    the liquidation level) to ``level_after`` (exact fractions as text; "None": no debt left);
    ``complete`` False when locked funds kept the level from being restored."""

    account: str
    level_before: str
    level_after: str
    complete: bool


@register_output
class SocializedLoss(Output, tag=True):
    """A loss neither the fund nor ADL covered, carried by the settlement account."""

    symbol: str
    asset: str
    amount: int
