"""fengkong.model.fixed: exact decimal parsing, formatting and the named rounding rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fengkong.model.fixed import (
    CHARGE,
    CREDIT,
    PAYOUT,
    FixedPointError,
    Rounding,
    div_round,
    format_units,
    parse_units,
    rescale,
)


@pytest.mark.parametrize(
    ("text", "scale", "units"),
    [
        ("0", 8, 0),
        ("1", 8, 100_000_000),
        ("67123.5", 1, 671_235),
        ("0.00000001", 8, 1),
        ("-12.34", 2, -1234),
        ("1.50", 1, 15),  # trailing zeros are not significant
        ("123456789012345678901234567890", 0, 123456789012345678901234567890),
    ],
)
def test_parse_units_converts_exactly(text: str, scale: int, units: int) -> None:
    assert parse_units(text, scale, field="amount") == units


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("nan", "not a finite decimal"),
        ("inf", "not a finite decimal"),
        ("-Infinity", "not a finite decimal"),
        ("1e5", "not a finite decimal"),
        ("", "not a finite decimal"),
        (" 1", "not a finite decimal"),
        ("+1", "not a finite decimal"),
        ("01", "not a finite decimal"),
        (".5", "not a finite decimal"),
        ("1.", "not a finite decimal"),
        ("1_000", "not a finite decimal"),
        ("١٢", "not a finite decimal"),  # non-ASCII digits
        ("1" * 41, "not a finite decimal"),
        ("0.123456789", "more than 8 decimals"),
    ],
)
def test_parse_units_rejects_with_field_and_value(text: str, reason: str) -> None:
    with pytest.raises(FixedPointError) as caught:
        parse_units(text, 8, field="deposit.amount")
    assert caught.value.field == "deposit.amount"
    assert caught.value.value == text
    assert reason in caught.value.reason
    assert "deposit.amount" in str(caught.value)


@pytest.mark.parametrize("value", [1.5, 1, None, b"1", float("nan")])
def test_parse_units_refuses_non_strings_so_no_float_reaches_money(value: object) -> None:
    with pytest.raises(FixedPointError, match="must be a decimal string"):
        parse_units(value, 8, field="price")


def test_parse_units_enforces_declared_bounds() -> None:
    assert parse_units("5", 0, field="qty", minimum=1, maximum=5) == 5
    with pytest.raises(FixedPointError, match="below minimum 1"):
        parse_units("0", 0, field="qty", minimum=1)
    with pytest.raises(FixedPointError, match=r"above maximum 0\.05"):
        parse_units("0.06", 2, field="rate", maximum=5)


def test_named_rules_round_in_the_exchanges_favour() -> None:
    # 7 / 2 = 3.5: a payout is rounded down, a charge up; a signed credit towards -inf
    assert div_round(7, 2, PAYOUT) == 3
    assert div_round(7, 2, CHARGE) == 4
    assert div_round(-7, 2, CREDIT) == -4  # a loss credited as -3.5 costs the user 4
    assert div_round(-7, 2, CHARGE) == -3
    assert div_round(8, 2, CHARGE) == 4  # exact divisions are exact
    with pytest.raises(ValueError, match="denominator"):
        div_round(1, 0, Rounding.FLOOR)


def test_rescale_up_is_exact_and_down_uses_the_rule() -> None:
    assert rescale(15, 1, 3, PAYOUT) == 1500
    assert rescale(1999, 3, 1, PAYOUT) == 19
    assert rescale(1999, 3, 1, CHARGE) == 20


@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(0, 18))
def test_format_then_parse_round_trips(units: int, scale: int) -> None:
    assert parse_units(format_units(units, scale), scale, field="x") == units


@given(st.integers(-(10**20), 10**20), st.integers(1, 10**9))
def test_floor_and_ceil_bracket_the_exact_quotient(numerator: int, denominator: int) -> None:
    low = div_round(numerator, denominator, Rounding.FLOOR)
    high = div_round(numerator, denominator, Rounding.CEIL)
    assert low * denominator <= numerator <= high * denominator
    assert high - low == (0 if numerator % denominator == 0 else 1)


_REFERENCE = __import__("re").compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


@given(st.text(alphabet="-0123456789.e+ ", max_size=12), st.integers(0, 8))
def test_parser_accepts_exactly_the_documented_grammar(text: str, scale: int) -> None:
    """The hand-written fast parser agrees with the regular expression in its docstring."""
    from decimal import Decimal

    grammatical = _REFERENCE.fullmatch(text) is not None
    try:
        units = parse_units(text, scale, field="x")
    except FixedPointError as err:
        assert not grammatical or err.reason == f"more than {scale} decimals"
        return
    assert grammatical
    assert Decimal(units) / (Decimal(10) ** scale) == Decimal(text)
