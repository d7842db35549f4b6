"""Per-instrument risk parameters of the gate, resolved once to integers at configuration."""

from __future__ import annotations

from math import gcd

from fengkong.engine.component import RejectError
from fengkong.gate.events import GateInstrumentConfigured
from fengkong.ledger.contracts import RATE_SCALE, ContractMath
from fengkong.margin.tiers import TierTable, TierTableError
from fengkong.model.events import RejectReason
from fengkong.model.fixed import FixedPointError, parse_units
from fengkong.model.instruments import Instrument

__all__ = ["InstrumentRules", "resolve_rules"]


def _scaler(exponent: int) -> tuple[int, int]:
    """``(up, down)`` with ``10**exponent == up / down``."""
    return (10**exponent, 1) if exponent >= 0 else (1, 10**-exponent)


class InstrumentRules:
    """Everything the per-order path needs about one instrument, pre-resolved.

    Rates (``band``, ``slippage``, ``fee_reserve``) at ``RATE_SCALE`` decimals; ``max_notional``
    in settlement units; ``position_limit`` / ``oi_cap`` in contracts; ``base_per_qty`` the
    base-asset units of one quantity unit (spot sells lock ``qty × base_per_qty``).
    """

    __slots__ = (
        "band", "base_per_qty", "config", "default_leverage", "fee_reserve", "linear", "math",
        "max_notional", "notional_den", "notional_num", "oi_cap", "option", "position_limit",
        "settle", "slippage", "spot", "symbol", "tiers",
    )  # fmt: skip

    def __init__(
        self,
        config: GateInstrumentConfigured,
        instrument: Instrument,
        math: ContractMath,
        tiers: TierTable | None,
        numbers: dict[str, int | None],
        base_scale: int,
    ) -> None:
        self.config = config
        self.symbol = instrument.symbol
        self.spot = instrument.is_spot
        self.option = instrument.is_option
        self.settle = instrument.settle
        self.math = math
        # linear notional rounded up, ``ContractMath.charge(q, p, 1.0)`` with its constants
        # folded: ceil(q × p × num / den)
        self.linear = not math.inverse
        up, down = _scaler(math.settle_scale - math.value_scale)
        divisor = gcd(math.multiplier * up, down)
        self.notional_num = math.multiplier * up // divisor
        self.notional_den = down // divisor
        self.tiers = tiers
        self.default_leverage = config.default_leverage
        self.band = numbers["price_band"]
        self.slippage = numbers["market_slippage"]
        self.fee_reserve = numbers["fee_reserve"]
        self.max_notional = numbers["max_notional"]
        self.position_limit = numbers["position_limit"]
        self.oi_cap = numbers["open_interest_cap"]
        self.base_per_qty = (
            instrument.multiplier
            * 10 ** (base_scale - instrument.qty_scale - instrument.multiplier_scale)
            if instrument.is_spot
            else 0
        )


def _invalid(field: str, value: object, message: str) -> RejectError:
    return RejectError(RejectReason.INVALID_PARAMETER, field, value, message)


def resolve_rules(
    config: GateInstrumentConfigured,
    instrument: Instrument,
    math: ContractMath,
    settle_scale: int,
    base_scale: int,
) -> InstrumentRules:
    """Validate a configuration against its instrument; raise ``RejectError`` naming the
    field (tier tables: every problem, with its path)."""
    if config.default_leverage < 1:
        raise _invalid("default_leverage", config.default_leverage, "must be >= 1")
    scales = {
        "price_band": RATE_SCALE,
        "market_slippage": RATE_SCALE,
        "fee_reserve": RATE_SCALE,
        "max_notional": settle_scale,
        "position_limit": instrument.qty_scale,
        "open_interest_cap": instrument.qty_scale,
    }
    numbers: dict[str, int | None] = {}
    for field, scale in scales.items():
        text = getattr(config, field)
        try:
            numbers[field] = None if text is None else parse_units(text, scale, field=field)
        except FixedPointError as error:
            raise RejectError(RejectReason.INVALID_NUMBER, field, text, error.reason) from None
        if numbers[field] is not None and numbers[field] < 0:
            raise _invalid(field, text, "must not be negative")
    tiers = None
    if instrument.is_spot or instrument.is_option:
        if config.tiers:
            raise _invalid("tiers", len(config.tiers), "spot and options have no margin tiers")
    else:
        rows = [
            {k: v for k, v in (("floor", r.floor), ("cap", r.cap), ("max_leverage",
             r.max_leverage), ("mmr", r.mmr), ("cum", r.cum)) if v is not None}
            for r in config.tiers
        ]  # fmt: skip
        try:
            tiers = TierTable.parse(rows, settle_scale)
        except TierTableError as error:
            raise _invalid("tiers", len(rows), str(error)) from None
        if config.default_leverage > tiers.tiers[0].max_leverage:
            raise _invalid(
                "default_leverage", config.default_leverage, "above the first bracket's maximum"
            )
    return InstrumentRules(config, instrument, math, tiers, numbers, base_scale)
