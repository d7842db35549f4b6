"""A synthetic listing of perpetuals with tiered brackets, for simulations and benchmarks.

Shape after streaming-and-perf.md §3.2 (200 instruments, 6 tiers each, MMR 0.4 % → 10 %):

* instrument 0 is ``BTCUSDT-PERP`` (linear, mark 60,000); instruments ``1 .. inverse`` are
  BTC-margined inverse contracts: ``BTCUSD-PERP`` and quarterly futures ``BTCUSD-Q1`` …
  (100 USD per contract, marks 60,000 ± a basis of up to 1 %); the rest are linear USDT
  perpetuals ``C{k}USDT-PERP`` with marks log-uniform in [0.05, 4,000] USDT;
* price scale: 5 significant digits at the mark (at most 8 decimals); lot:
  10^−max(0, ⌊log10 p⌋ − 1) base units (0.001 BTC at 60,000, 0.01 at 3,000, 1 below 100);
  one contract for inverse;
* brackets: Binance BTCUSDT 2021 tiers 1–6 (MMR 0.4, 0.5, 1, 2.5, 5, 10 %; max leverage 125
  … 5) with caps 50k, 250k, 1M, 10M, 20M, 50M USDT, scaled down ×10 for instruments ranked
  ≥ 20 and ×100 for those ranked ≥ 100 (smaller markets, smaller brackets); inverse caps 5, 10,
  50, 200, 1,000, 2,000 BTC. ``cum`` is derived by :class:`fengkong.margin.tiers.TierTable`.

Deterministic for a seed. Synthetic: no real listing is claimed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fengkong.margin.tiers import TierTable
from fengkong.model.assets import Asset
from fengkong.model.enums import InstrumentKind, InstrumentStatus
from fengkong.model.instruments import Instrument

__all__ = ["Universe", "make_universe"]

USDT_SCALE = 8
BTC_SCALE = 8
_MMRS = ("0.004", "0.005", "0.01", "0.025", "0.05", "0.1")
_LEVERAGES = ("125", "100", "50", "20", "10", "5")
_LINEAR_CAPS = (50_000, 250_000, 1_000_000, 10_000_000, 20_000_000, 50_000_000)
_INVERSE_CAPS = (5, 10, 50, 200, 1_000, 2_000)
FIRST_EXPIRY_MS = 1_774_598_400_000  # 2026-03-27T08:00:00Z
QUARTER_MS = 91 * 86_400_000


@dataclass(frozen=True)
class Universe:
    """Assets, instruments (index order), their tier tables and initial marks (price units)."""

    assets: tuple[Asset, ...]
    instruments: tuple[Instrument, ...]
    tables: dict[str, TierTable]
    marks: tuple[int, ...]

    @property
    def symbols(self) -> list[str]:
        return [x.symbol for x in self.instruments]

    def mark_floats(self) -> np.ndarray:
        return np.array([m / 10**x.price_scale for m, x in zip(self.marks, self.instruments,
                                                                strict=True)])  # fmt: skip


def _table(caps: tuple[int, ...], divisor: int, scale: int) -> TierTable:
    rows = []
    floor = 0
    for cap, mmr, leverage in zip(caps, _MMRS, _LEVERAGES, strict=True):
        top = cap // divisor
        rows.append({"floor": str(floor), "cap": str(top), "max_leverage": leverage, "mmr": mmr})
        floor = top
    return TierTable.parse(rows, scale)


def _price_scale(price: float) -> int:
    return min(8, max(0, 4 - math.floor(math.log10(price))))


def make_universe(instruments: int = 200, inverse: int = 10, seed: int = 1) -> Universe:
    """The listing described in the module docstring (``instruments`` >= ``inverse`` + 1)."""
    if instruments < inverse + 1:
        raise ValueError(f"instruments={instruments}: need at least inverse + 1")
    rng = np.random.default_rng(seed)
    assets = {"USDT": Asset(code="USDT", scale=USDT_SCALE), "BTC": Asset(code="BTC", scale=8)}
    listed: list[Instrument] = []
    tables: dict[str, TierTable] = {}
    marks: list[int] = []
    linear_prices = np.exp(rng.uniform(np.log(0.05), np.log(4_000.0), size=instruments))
    basis = rng.uniform(-0.01, 0.01, size=instruments)
    for k in range(instruments):
        if k == 0 or k > inverse:
            price = 60_000.0 if k == 0 else float(linear_prices[k])
            base = "BTC" if k == 0 else f"C{k}"
            assets.setdefault(base, Asset(code=base, scale=8))
            symbol = f"{base}USDT-PERP"
            price_scale = _price_scale(price)
            qty_scale = min(8, max(0, math.floor(math.log10(price)) - 1))
            kind, quote, settle, multiplier = InstrumentKind.LINEAR_PERPETUAL, "USDT", "USDT", 1
            expiry = None
            divisor = 1 if k < 20 else (10 if k < 100 else 100)
            tables[symbol] = _table(_LINEAR_CAPS, divisor, USDT_SCALE)
        else:
            price = 60_000.0 * (1.0 + basis[k])
            symbol = "BTCUSD-PERP" if k == 1 else f"BTCUSD-Q{k - 1}"
            price_scale, qty_scale = 1, 0
            kind = InstrumentKind.INVERSE_PERPETUAL if k == 1 else InstrumentKind.INVERSE_FUTURE
            expiry = None if k == 1 else FIRST_EXPIRY_MS + (k - 2) * QUARTER_MS
            quote, settle, multiplier = "USD", "BTC", 100
            assets.setdefault("USD", Asset(code="USD", scale=2))
            tables[symbol] = _table(_INVERSE_CAPS, 1, BTC_SCALE)
        mark = round(price * 10**price_scale)
        listed.append(
            Instrument(
                symbol=symbol,
                kind=kind,
                base="BTC" if settle == "BTC" else (symbol.removesuffix("USDT-PERP")),
                quote=quote,
                settle=settle,
                price_scale=price_scale,
                qty_scale=qty_scale,
                multiplier=multiplier,
                multiplier_scale=0,
                tick_size=1,
                lot_size=1,
                min_qty=1,
                max_qty=10**15,
                min_notional=0,
                status=InstrumentStatus.TRADING,
                expiry=expiry,
            )
        )
        marks.append(mark)
    return Universe(tuple(assets.values()), tuple(listed), tables, tuple(marks))
