"""Small closed vocabularies shared by the model, events and components."""

from __future__ import annotations

import enum


class InstrumentKind(enum.StrEnum):
    SPOT = "spot"
    LINEAR_PERPETUAL = "linear_perpetual"
    INVERSE_PERPETUAL = "inverse_perpetual"
    LINEAR_FUTURE = "linear_future"
    INVERSE_FUTURE = "inverse_future"
    OPTION = "option"


class InstrumentStatus(enum.StrEnum):
    PRE_LISTING = "pre_listing"
    TRADING = "trading"
    HALTED = "halted"
    SETTLED = "settled"


class OptionKind(enum.StrEnum):
    CALL = "call"
    PUT = "put"


class PositionMode(enum.StrEnum):
    """One-way: one net position per instrument. Hedge: a long and a short leg per instrument."""

    ONE_WAY = "one_way"
    HEDGE = "hedge"


class MarginMode(enum.StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


class PositionSide(enum.StrEnum):
    """``BOTH`` in one-way mode; ``LONG`` / ``SHORT`` legs in hedge mode."""

    BOTH = "both"
    LONG = "long"
    SHORT = "short"


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(enum.StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    POST_ONLY = "post_only"


class Liquidity(enum.StrEnum):
    """Which side of a fill rested on the book."""

    MAKER = "maker"
    TAKER = "taker"
