"""Per-instrument columns of the screening book: kind, settlement asset, scales, brackets, marks.

Every number here is a ``float64`` **for screening only**: the exact integers stay in the
ledger and the tier tables, and every screened candidate is re-checked exactly
(:mod:`fengkong.liquidation.exact`) before anything is done to it.

Natural units used by the kernels (margin-mechanics.md, "Conventions", §1.1, §2):

* ``size`` = signed contracts × multiplier: base units for a linear instrument, USD face value
  (contracts × contract size) for an inverse one;
* ``entry`` = the ledger's signed ``entry_value`` in settlement-asset units: ``Σ size × price``
  quote (linear) or ``Σ size / price`` coin (inverse);
* ``UPNL = size × mark − entry`` (linear), ``entry − size / mark`` (inverse);
* ``notional = |size| × mark`` (linear), ``|size| / mark`` (inverse);
* brackets ``(floor, cap]`` with ``MM = notional × MMR − cum`` (Binance, §1.1).

Bracket tables are taken as sequences of records with integer ``cap`` and ``cum`` (settlement
units) and ``mmr`` (at ``RATE_SCALE`` decimals), e.g. ``fengkong.margin.tiers.TierTable.tiers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from fengkong.ledger.contracts import RATE_SCALE, ContractMath
from fengkong.model.enums import InstrumentKind
from fengkong.model.instruments import Instrument

__all__ = ["SCREENED_KINDS", "BracketRow", "InstrumentColumns", "MissingMarkError"]

SCREENED_KINDS = frozenset(
    {
        InstrumentKind.LINEAR_PERPETUAL,
        InstrumentKind.LINEAR_FUTURE,
        InstrumentKind.INVERSE_PERPETUAL,
        InstrumentKind.INVERSE_FUTURE,
    }
)
"""Instruments margined by tiered maintenance margin. Spot and options are not screened here
(spot margin levels and option margins have their own models in ``fengkong.margin``)."""


class BracketRow(Protocol):
    """One bracket: ``cap`` and ``cum`` in settlement units, ``mmr`` at ``RATE_SCALE``."""

    cap: int
    mmr: int
    cum: int


class MissingMarkError(LookupError):
    """A held instrument has no usable mark: screening refuses to run (fail closed)."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = list(symbols)
        super().__init__(f"no mark price for held instruments: {', '.join(self.symbols)}")


def _grow(array: np.ndarray, rows: int, fill: float = 0.0) -> np.ndarray:
    """``array`` with at least ``rows`` rows (capacity doubled), new rows set to ``fill``."""
    if rows <= array.shape[0]:
        return array
    grown = np.full((max(rows, 2 * array.shape[0]), *array.shape[1:]), fill, dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


class InstrumentColumns:
    """Registry of screened instruments and settlement assets, as kernel-ready arrays.

    ``caps``, ``mmr``, ``cum`` are ``(instruments, max_tiers)`` bracket arrays (unused tiers
    padded with the last cap); ``tiers`` the number of brackets per instrument; ``marks`` the
    current mark per instrument (NaN until set).
    """

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self.index: dict[str, int] = {}
        self.math: list[ContractMath] = []
        self.assets: list[str] = []
        self.asset_index: dict[str, int] = {}
        self.asset_scale: list[int] = []
        self.unit = np.zeros(0)  # one minor unit of each settlement asset
        self.inverse = np.zeros(0, dtype=np.bool_)
        self.settle = np.zeros(0, dtype=np.int32)
        self.price_scale: list[int] = []
        self.size_divisor: list[int] = []
        self.value_divisor: list[int] = []
        self.marks = np.zeros(0)
        self.price = np.zeros(0)  # the mark (linear) or 1 / mark (inverse)
        self.sign = np.zeros(0)  # +1 linear, -1 inverse
        self.caps = np.zeros((0, 1))
        self.mmr = np.zeros((0, 1))
        self.cum = np.zeros((0, 1))
        self.tiers = np.zeros(0, dtype=np.int32)
        self._limits: tuple[tuple, tuple[np.ndarray, ...]] | None = None

    def __len__(self) -> int:
        return len(self.symbols)

    def add_asset(self, code: str, scale: int) -> int:
        found = self.asset_index.get(code)
        if found is not None:
            if self.asset_scale[found] != scale:
                raise ValueError(
                    f"asset {code}: scale {scale} != registered {self.asset_scale[found]}"
                )
            return found
        self.asset_index[code] = len(self.assets)
        self.assets.append(code)
        self.asset_scale.append(scale)
        self.unit = np.append(self.unit, 10.0**-scale)
        return len(self.assets) - 1

    def add(self, instrument: Instrument, settle_scale: int, brackets: Sequence[BracketRow]) -> int:
        """Register ``instrument`` with its bracket table; returns its index."""
        if instrument.kind not in SCREENED_KINDS:
            raise ValueError(f"{instrument.symbol}: {instrument.kind} is not screened here")
        if instrument.symbol in self.index:
            raise ValueError(f"{instrument.symbol}: already registered")
        if not brackets:
            raise ValueError(f"{instrument.symbol}: empty bracket table")
        asset = self.add_asset(instrument.settle, settle_scale)
        i = len(self.symbols)
        math = ContractMath(instrument, settle_scale)
        self.index[instrument.symbol] = i
        self.symbols.append(instrument.symbol)
        self.math.append(math)
        self.price_scale.append(instrument.price_scale)
        self.size_divisor.append(10 ** (instrument.qty_scale + instrument.multiplier_scale))
        self.value_divisor.append(10**math.value_scale)
        n = i + 1
        self.inverse = _grow(self.inverse, n, False)
        self.inverse[i] = instrument.is_inverse
        self.settle = _grow(self.settle, n)
        self.settle[i] = asset
        self.marks = _grow(self.marks, n, np.nan)
        self.price = _grow(self.price, n, np.nan)
        self.sign = _grow(self.sign, n)
        self.sign[i] = -1.0 if instrument.is_inverse else 1.0
        width = max(self.caps.shape[1], len(brackets))
        for name in ("caps", "mmr", "cum"):
            table = getattr(self, name)
            if table.shape[1] < width:
                table = np.concatenate(
                    [table, np.repeat(table[:, -1:], width - table.shape[1], axis=1)], axis=1
                )
            setattr(self, name, _grow(table, n))
        self.tiers = _grow(self.tiers, n)
        self.tiers[i] = len(brackets)
        unit = 10**settle_scale
        self.caps[i, : len(brackets)] = [b.cap / unit for b in brackets]
        self.mmr[i, : len(brackets)] = [b.mmr / 10**RATE_SCALE for b in brackets]
        self.cum[i, : len(brackets)] = [b.cum / unit for b in brackets]
        for name in ("caps", "mmr", "cum"):
            table = getattr(self, name)
            table[i, len(brackets) :] = table[i, len(brackets) - 1]
        return i

    # --- conversions of exact integers (one correctly rounded division each) ---------------

    def size(self, i: int, qty: int) -> float:
        """Signed ``qty`` contracts as natural size (base units or USD face)."""
        return qty * self.math[i].multiplier / self.size_divisor[i]

    def value(self, i: int, entry_value: int) -> float:
        """The ledger's entry value in settlement-asset units."""
        return entry_value / self.value_divisor[i]

    def amount(self, asset: int, units: int) -> float:
        return units / 10 ** self.asset_scale[asset]

    def set_mark(self, symbol: str, price: int) -> int:
        """Set the mark of ``symbol`` from integer price units; returns its index."""
        i = self.index[symbol]
        mark = price / 10 ** self.price_scale[i]
        self.marks[i] = mark
        self.price[i] = 1.0 / mark if self.inverse[i] else mark
        return i

    def set_marks(self, marks: np.ndarray) -> None:
        """Set every mark at once (floats, instrument order), for scenarios and benchmarks."""
        n = len(self.symbols)
        self.marks[:n] = marks
        self.price[:n] = np.where(self.inverse[:n], 1.0 / self.marks[:n], self.marks[:n])

    def clear_mark(self, symbol: str) -> None:
        """Forget a mark (it went stale): screening of its holders refuses until a new one."""
        i = self.index[symbol]
        self.marks[i] = self.price[i] = np.nan

    def kernel_view(self, rel_band: float, unit_band: float) -> tuple[np.ndarray, ...]:
        """Trimmed kernel arrays ``(price, sign, settle, caps, mmr, cum, last, limit,
        asset_band)``: ``last`` the last bracket's index, ``limit`` the notional above which
        a position is over the last cap even with the band (``(cap − band) / (1 + rel)``),
        ``asset_band`` = ``unit_band`` minor units of each settlement asset."""
        n = len(self.symbols)
        key = (rel_band, unit_band, n, len(self.assets))
        if self._limits is None or self._limits[0] != key:
            last = (self.tiers[:n] - 1).astype(np.int64)
            asset_band = unit_band * self.unit
            cap = self.caps[np.arange(n), last]
            limit = (cap - asset_band[self.settle[:n]]) / (1.0 + rel_band)
            self._limits = (key, (last, limit, asset_band))
        last, limit, asset_band = self._limits[1]
        return (
            self.price[:n],
            self.sign[:n],
            self.settle[:n],
            self.caps[:n],
            self.mmr[:n],
            self.cum[:n],
            last,
            limit,
            asset_band,
        )
