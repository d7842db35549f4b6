"""The deterministic Black-76 option mark (margin.options.black76_value)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.margin.options import black76_value
from fengkong.market.options import black76
from fengkong.model.enums import OptionKind


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from([OptionKind.CALL, OptionKind.PUT]),
    forward=st.integers(1_000, 200_000),
    moneyness=st.integers(50, 200),  # strike in % of the forward
    vol=st.integers(5, 300),  # % a year
    days=st.integers(1, 730),
)
def test_decimal_black76_agrees_with_the_float_model(kind, forward, moneyness, vol, days) -> None:
    """Black (1976): the exact decimal value matches the float64 Black-76 of
    fengkong.market.options to float precision, and put-call parity holds exactly enough."""
    strike = forward * moneyness // 100
    years = Fraction(days, 365)
    exact = black76_value(kind, Fraction(forward), Fraction(strike), Fraction(vol, 100), years)
    floating = black76(float(forward), float(strike), days / 365, vol / 100, 0.0, kind.value)
    assert float(exact) == pytest.approx(floating.price, rel=1e-9, abs=1e-9 * forward)
    other = OptionKind.PUT if kind is OptionKind.CALL else OptionKind.CALL
    twin = black76_value(other, Fraction(forward), Fraction(strike), Fraction(vol, 100), years)
    parity = (exact - twin) if kind is OptionKind.CALL else (twin - exact)
    assert abs(parity - (forward - strike)) < Fraction(1, 10**12) * forward


def test_at_expiry_the_value_is_intrinsic() -> None:
    assert black76_value(OptionKind.CALL, Fraction(71_000), Fraction(70_000), Fraction(1, 2),
                         Fraction(0)) == 1_000  # fmt: skip
    assert black76_value(OptionKind.PUT, Fraction(71_000), Fraction(70_000), Fraction(1, 2),
                         Fraction(-1)) == 0  # fmt: skip
