"""The instruments a risk calculation revalues, as one columnar table.

Units follow :mod:`fengkong.model.instruments`: a quantity counts contracts; one contract is
``multiplier`` units of the base asset for spot, linear futures and options, and
``multiplier`` units of the quote currency (USD) for inverse futures. ``price`` is the
instrument's mark price in USD(T); for an option it is the underlying forward ``F``. Every
P&L is in the quote currency (USDT, taken as USD).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fengkong.model.enums import InstrumentKind, OptionKind
from fengkong.model.instruments import INVERSE_KINDS, LINEAR_KINDS

__all__ = ["DAYS_PER_YEAR", "InstrumentTable", "OptionTerms", "RiskInstrument"]

DAYS_PER_YEAR = 365.0
"""Crypto trades every day: option time and horizons count calendar days over 365."""


@dataclass(frozen=True)
class OptionTerms:
    """A European option's terms; ``years_to_expiry`` counted from the portfolio's ``as_of``."""

    kind: OptionKind
    strike: float
    years_to_expiry: float
    volatility: float  # annualised implied volatility, as a fraction (0.50 = 50%)
    rate: float = 0.0
    coin_settled: bool = False  # premium and P&L in the underlying coin (Deribit style)


@dataclass(frozen=True)
class RiskInstrument:
    """One instrument: what it is, which asset's price moves it, and its current price."""

    symbol: str
    kind: InstrumentKind
    underlying: str
    price: float
    multiplier: float = 1.0
    option: OptionTerms | None = None

    def __post_init__(self) -> None:
        if (self.kind is InstrumentKind.OPTION) != (self.option is not None):
            raise ValueError(f"{self.symbol}: option terms must be given for options only")
        if not (self.price > 0.0 and np.isfinite(self.price)):
            raise ValueError(f"{self.symbol}: price={self.price!r} must be a positive number")
        if not (self.multiplier > 0.0 and np.isfinite(self.multiplier)):
            raise ValueError(f"{self.symbol}: multiplier={self.multiplier!r} must be positive")


@dataclass(frozen=True)
class InstrumentTable:
    """Instruments as columns (numpy arrays), the shape every revaluation works on."""

    symbols: tuple[str, ...]
    assets: tuple[str, ...]  # the distinct underlyings, in column order of scenario returns
    asset_index: np.ndarray  # (I,) column of each instrument's underlying in ``assets``
    price: np.ndarray
    multiplier: np.ndarray
    is_linear: np.ndarray
    is_inverse: np.ndarray
    is_option: np.ndarray
    strike: np.ndarray  # options only (NaN elsewhere), same for the fields below
    years_to_expiry: np.ndarray
    volatility: np.ndarray
    rate: np.ndarray
    is_call: np.ndarray
    coin_settled: np.ndarray

    @classmethod
    def build(
        cls, instruments: Sequence[RiskInstrument], assets: Sequence[str] | None = None
    ) -> InstrumentTable:
        """Columns of ``instruments``; ``assets`` fixes the order of scenario-return columns."""
        if not instruments:
            raise ValueError("instruments: need at least one")
        universe = (
            tuple(assets)
            if assets is not None
            else tuple(dict.fromkeys(i.underlying for i in instruments))
        )
        unknown = [i.symbol for i in instruments if i.underlying not in universe]
        if unknown:
            raise ValueError(f"instruments {unknown}: underlying not among assets {universe}")

        def option_field(name: str) -> np.ndarray:
            return np.array(
                [getattr(i.option, name) if i.option else np.nan for i in instruments], dtype=float
            )

        return cls(
            symbols=tuple(i.symbol for i in instruments),
            assets=universe,
            asset_index=np.array(
                [universe.index(i.underlying) for i in instruments], dtype=np.intp
            ),
            price=np.array([i.price for i in instruments], dtype=float),
            multiplier=np.array([i.multiplier for i in instruments], dtype=float),
            is_linear=np.array([i.kind in LINEAR_KINDS for i in instruments]),
            is_inverse=np.array([i.kind in INVERSE_KINDS for i in instruments]),
            is_option=np.array([i.kind is InstrumentKind.OPTION for i in instruments]),
            strike=option_field("strike"),
            years_to_expiry=option_field("years_to_expiry"),
            volatility=option_field("volatility"),
            rate=option_field("rate"),
            is_call=np.array(
                [bool(i.option and i.option.kind is OptionKind.CALL) for i in instruments]
            ),
            coin_settled=np.array([bool(i.option and i.option.coin_settled) for i in instruments]),
        )

    def __len__(self) -> int:
        return len(self.symbols)
