"""Portfolio files (YAML): what a risk officer hands to ``fengkong risk``.

Format (``examples/portfolio.yaml`` is a complete example)::

    name: house-book               # free text
    as_of: 2026-03-30              # valuation day (UTC); option expiries count from it
    positions:
      - symbol: BTCUSDT            # unique within the file
        kind: spot                 # spot | linear_perpetual | linear_future |
                                   # inverse_perpetual | inverse_future | option
        underlying: BTC            # the asset whose price history moves it
        quantity: "2.5"            # contracts, signed (negative = short)
        price: "66797.37"          # optional: mark in USD; default the underlying's close
        multiplier: "1"            # optional: base units per contract (default 1);
                                   # inverse: USD face per contract (required)
      - symbol: BTC-25DEC26-72000-P
        kind: option
        underlying: BTC
        quantity: "-10"
        option_kind: put           # call | put
        strike: "72000"
        expiry: 2026-12-25T08:00:00Z
        volatility: "0.5029"       # annualised implied vol as a fraction
        rate: "0"                  # optional, continuously compounded (default 0)
        settle: quote              # optional: quote (USD premium, default) | coin (Deribit)

Numbers may be YAML numbers or decimal strings (strings keep the file's digits exact).
Loading checks the whole file and raises :class:`PortfolioFileError` listing every problem
with its path (``positions[3].strike: …``), not just the first.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fengkong.analytics.instruments import DAYS_PER_YEAR, OptionTerms, RiskInstrument
from fengkong.model.enums import InstrumentKind, OptionKind

__all__ = ["Portfolio", "PortfolioFileError", "Position", "load_portfolio", "parse_portfolio"]

_TOP_FIELDS = {"name", "as_of", "positions"}
_COMMON_FIELDS = {"symbol", "kind", "underlying", "quantity", "price", "multiplier"}
_OPTION_FIELDS = {"option_kind", "strike", "expiry", "volatility", "rate", "settle"}


class PortfolioFileError(ValueError):
    """Every problem found in a portfolio file, one ``path: message`` per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{listed}")


@dataclass(frozen=True)
class Position:
    """Contracts held of one instrument; ``price`` is None when the file leaves it to the data."""

    instrument_symbol: str
    kind: InstrumentKind
    underlying: str
    quantity: float
    price: float | None
    multiplier: float
    option: OptionTerms | None


@dataclass(frozen=True)
class Portfolio:
    name: str
    as_of: dt.datetime
    positions: tuple[Position, ...] = field(default_factory=tuple)

    @property
    def underlyings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.underlying for p in self.positions))

    @property
    def has_options(self) -> bool:
        return any(p.option is not None for p in self.positions)

    def instruments(self, prices: Mapping[str, float]) -> list[RiskInstrument]:
        """The positions' instruments, with ``prices[underlying]`` where the file gave none."""
        missing = sorted({p.underlying for p in self.positions if p.price is None} - set(prices))
        if missing:
            raise ValueError(f"no price for underlying(s) {missing}")
        return [
            RiskInstrument(
                symbol=p.instrument_symbol,
                kind=p.kind,
                underlying=p.underlying,
                price=p.price if p.price is not None else float(prices[p.underlying]),
                multiplier=p.multiplier,
                option=p.option,
            )
            for p in self.positions
        ]

    def quantities(self) -> np.ndarray:
        return np.array([p.quantity for p in self.positions], dtype=float)


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


def _number(value: Any, path: str, problems: _Problems, check: Callable[[float], bool], rule: str):
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.add(path, f"{value!r} is not a number")
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        problems.add(path, f"{value!r} is not a decimal number")
        return None
    result = float(number)
    if not math.isfinite(result) or not check(result):
        problems.add(path, f"{value!r} {rule}")
        return None
    return result


def _timestamp(value: Any, path: str, problems: _Problems) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, dt.date):
        stamp = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            problems.add(path, f"{value!r} is not an ISO date or date-time")
            return None
    else:
        problems.add(path, f"{value!r} is not an ISO date or date-time")
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)


def _choice(value: Any, path: str, problems: _Problems, enum_type):
    try:
        return enum_type(value)
    except ValueError:
        allowed = " | ".join(member.value for member in enum_type)
        problems.add(path, f"{value!r} is not one of {allowed}")
        return None


def _position(
    raw: Any, path: str, as_of: dt.datetime | None, problems: _Problems
) -> Position | None:
    if not isinstance(raw, Mapping):
        problems.add(path, f"expected a mapping of fields, got {type(raw).__name__}")
        return None
    before = len(problems.items)
    kind = _choice(raw.get("kind"), f"{path}.kind", problems, InstrumentKind)
    allowed = _COMMON_FIELDS | (_OPTION_FIELDS if kind is InstrumentKind.OPTION else set())
    for name in sorted(set(raw) - allowed):
        problems.add(f"{path}.{name}", "unknown field" + (" for this kind" if kind else ""))
    for name in ("symbol", "underlying"):
        if not isinstance(raw.get(name), str) or not raw.get(name, "").strip():
            problems.add(f"{path}.{name}", f"{raw.get(name)!r}: required, a non-empty string")
    quantity = None
    if "quantity" not in raw:
        problems.add(f"{path}.quantity", "required")
    else:
        quantity = _number(raw["quantity"], f"{path}.quantity", problems, bool, "must be non-zero")
    price = None
    if raw.get("price") is not None:
        price = _number(raw["price"], f"{path}.price", problems, lambda x: x > 0, "must be > 0")
    multiplier = 1.0
    if raw.get("multiplier") is not None:
        multiplier = _number(
            raw["multiplier"], f"{path}.multiplier", problems, lambda x: x > 0, "must be > 0"
        )
    elif kind in (InstrumentKind.INVERSE_PERPETUAL, InstrumentKind.INVERSE_FUTURE):
        problems.add(f"{path}.multiplier", "required for inverse contracts (USD face per contract)")
    option = None
    if kind is InstrumentKind.OPTION:
        option = _option_terms(raw, path, as_of, problems)
    if len(problems.items) > before:
        return None
    return Position(
        instrument_symbol=raw["symbol"].strip(),
        kind=kind,
        underlying=raw["underlying"].strip().upper(),
        quantity=quantity,
        price=price,
        multiplier=multiplier,
        option=option,
    )


def _option_terms(
    raw: Mapping[str, Any], path: str, as_of: dt.datetime | None, problems: _Problems
) -> OptionTerms | None:
    for name in ("option_kind", "strike", "expiry", "volatility"):
        if name not in raw:
            problems.add(f"{path}.{name}", "required for options")
    option_kind = None
    if "option_kind" in raw:
        option_kind = _choice(raw["option_kind"], f"{path}.option_kind", problems, OptionKind)
    positive = (lambda x: x > 0, "must be > 0")
    strike = (
        _number(raw["strike"], f"{path}.strike", problems, *positive) if "strike" in raw else None
    )
    vol = None
    if "volatility" in raw:
        vol = _number(raw["volatility"], f"{path}.volatility", problems, *positive)
    rate = 0.0
    if raw.get("rate") is not None:
        rate = _number(raw["rate"], f"{path}.rate", problems, lambda x: True, "")
    settle = raw.get("settle", "quote")
    if settle not in ("quote", "coin"):
        problems.add(f"{path}.settle", f"{settle!r} is not one of quote | coin")
    years = None
    if "expiry" in raw:
        expiry = _timestamp(raw["expiry"], f"{path}.expiry", problems)
        if expiry is not None and as_of is not None:
            years = (expiry - as_of).total_seconds() / (DAYS_PER_YEAR * 86_400.0)
            if years <= 0.0:
                problems.add(f"{path}.expiry", f"{raw['expiry']!s} is not after as_of")
    if None in (option_kind, strike, vol, rate, years):
        return None
    return OptionTerms(option_kind, strike, years, vol, rate, coin_settled=settle == "coin")


def parse_portfolio(document: Any, source: str = "<portfolio>") -> Portfolio:
    """A :class:`Portfolio` from a parsed YAML document; every problem reported at once."""
    problems = _Problems()
    if not isinstance(document, Mapping):
        raise PortfolioFileError(source, ["(top): expected a mapping with name, as_of, positions"])
    for name in sorted(set(document) - _TOP_FIELDS):
        problems.add(name, "unknown field")
    name = document.get("name", Path(source).stem)
    if not isinstance(name, str):
        problems.add("name", f"{name!r} is not a string")
    as_of = None
    if "as_of" not in document:
        problems.add("as_of", "required (valuation day, e.g. 2026-03-30)")
    else:
        as_of = _timestamp(document["as_of"], "as_of", problems)
    raw_positions = document.get("positions")
    positions: list[Position] = []
    if not isinstance(raw_positions, list) or not raw_positions:
        problems.add("positions", "required, a non-empty list")
    else:
        for index, raw in enumerate(raw_positions):
            position = _position(raw, f"positions[{index}]", as_of, problems)
            if position is not None:
                positions.append(position)
        seen: dict[str, int] = {}
        for index, raw in enumerate(raw_positions):
            symbol = raw.get("symbol") if isinstance(raw, Mapping) else None
            if isinstance(symbol, str) and symbol in seen:
                problems.add(
                    f"positions[{index}].symbol", f"{symbol!r} repeats positions[{seen[symbol]}]"
                )
            elif isinstance(symbol, str):
                seen[symbol] = index
    if problems.items:
        raise PortfolioFileError(source, problems.items)
    return Portfolio(name=name, as_of=as_of, positions=tuple(positions))


def load_portfolio(path: Path | str) -> Portfolio:
    """Read and check a portfolio YAML file (see the module docstring for the format)."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise PortfolioFileError(str(path), [f"(file): not valid YAML: {error}"]) from None
    return parse_portfolio(document, str(path))
