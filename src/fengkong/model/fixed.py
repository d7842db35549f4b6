"""Fixed-point money: the only module that knows scales and rounding.

Every balance, quantity, price, fee, PnL and settlement amount in fengkong is a Python
``int`` counting minor units of a declared decimal scale: ``12.345`` at scale 3 is
``12345``. Decimal strings from the outside world are converted here, and every division
that can leave a remainder goes through one of the named rounding rules below, so that
rounding is explicit, auditable and always in the exchange's favour:

``PAYOUT``  (floor)  an amount the exchange pays or credits to a user is rounded down;
``CHARGE``  (ceil)   an amount the exchange charges or debits from a user is rounded up;
``CREDIT``  (floor)  a signed amount credited to a user (realized PnL, funding received or,
                     when negative, paid) is rounded towards minus infinity: a gain is
                     rounded down and a loss is rounded up in magnitude.

No float ever reaches a balance, a position or a settlement amount: the parsers refuse
floats, and the arithmetic helpers accept integers only.
"""

from __future__ import annotations

import enum

__all__ = [
    "CHARGE",
    "CREDIT",
    "PAYOUT",
    "FixedPointError",
    "Rounding",
    "div_round",
    "format_units",
    "parse_units",
    "rescale",
]

_MAX_TEXT = 40  # longer texts are refused before any int() conversion (no huge literals)


class FixedPointError(ValueError):
    """A decimal text or an integer amount that fengkong refuses; names the field and value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")


class Rounding(enum.Enum):
    """Direction of a division that leaves a remainder."""

    FLOOR = "floor"  # towards minus infinity
    CEIL = "ceil"  # towards plus infinity


PAYOUT = Rounding.FLOOR
CHARGE = Rounding.CEIL
CREDIT = Rounding.FLOOR


def div_round(numerator: int, denominator: int, rounding: Rounding) -> int:
    """``numerator / denominator`` rounded by ``rounding``; exact when it divides."""
    if denominator <= 0:
        raise ValueError(f"denominator={denominator!r}: must be positive")
    if rounding is Rounding.FLOOR:
        return numerator // denominator
    return -((-numerator) // denominator)


def rescale(units: int, from_scale: int, to_scale: int, rounding: Rounding) -> int:
    """Re-express ``units`` at ``from_scale`` decimals in ``to_scale`` decimals."""
    if to_scale >= from_scale:
        return units * 10 ** (to_scale - from_scale)
    return div_round(units, 10 ** (from_scale - to_scale), rounding)


def parse_units(
    text: object,
    scale: int,
    *,
    field: str,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """Convert a decimal string to integer units at ``scale`` decimals, exactly.

    Accepted: an optional minus sign, ASCII digits without superfluous leading zeros, an
    optional fraction (``-?(0|[1-9][0-9]*)(\\.[0-9]+)?``). Refused, with a
    :class:`FixedPointError` naming ``field`` and the text: floats and other non-strings,
    exponents, ``nan``/``inf``, empty or over-long texts, and a fraction with more significant
    decimals than ``scale`` (trailing zeros are not significant). ``minimum``/``maximum``
    bound the result in units, inclusive.
    """
    if type(text) is not str:
        raise FixedPointError(field, text, "must be a decimal string")
    whole, dot, fraction = text.partition(".")
    digits = whole[1:] if whole[:1] == "-" else whole
    if not (
        len(text) <= _MAX_TEXT
        and text.isascii()
        and digits.isdigit()
        and (digits[0] != "0" or len(digits) == 1)
        and (not dot or fraction.isdigit())
    ):
        raise FixedPointError(field, text, "not a finite decimal number")
    if fraction:
        fraction = fraction.rstrip("0")
        if len(fraction) > scale:
            raise FixedPointError(field, text, f"more than {scale} decimals")
    units = int(digits + fraction.ljust(scale, "0")) if scale else int(digits)
    if digits is not whole:
        units = -units
    if minimum is not None and units < minimum:
        raise FixedPointError(field, text, f"below minimum {format_units(minimum, scale)}")
    if maximum is not None and units > maximum:
        raise FixedPointError(field, text, f"above maximum {format_units(maximum, scale)}")
    return units


def format_units(units: int, scale: int) -> str:
    """The canonical decimal text of ``units`` at ``scale`` (no trailing zeros)."""
    if type(units) is not int:
        raise FixedPointError("units", units, "must be an int")
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**scale)
    if scale == 0 or fraction == 0:
        return f"{sign}{whole}"
    text = str(fraction).rjust(scale, "0").rstrip("0")
    return f"{sign}{whole}.{text}"
