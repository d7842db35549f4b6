"""Black-76 prices, Greeks and implied volatility against QuantLib and against themselves.

Reference: QuantLib ``BlackCalculator`` (PyPI ``quantlib``), forward Greeks. Black-76 rho holds
the forward fixed, which in QuantLib's spot-based vocabulary is ``rho + dividendRho``
(``T K DF N(d2) − T F DF N(d1) = −T V``); theta is ``theta(spot=F, T)``, where the
``ln(F/S)`` drift term vanishes.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from fengkong.market.options import (
    Greeks,
    ImpliedVolError,
    black76,
    black76_vec,
    implied_vol,
    implied_vol_vec,
    to_coin,
)

ql = pytest.importorskip("QuantLib", reason="QuantLib (dev extra) is the reference")

N_CASES = 1000
MINUTE = 1.0 / 525_600.0
_EPS = np.finfo(float).eps
_FIELDS = Greeks._fields


def _random_cases(seed: int, n: int) -> list[tuple[float, float, float, float, float, bool]]:
    """(F, K, T, vol, r, is_call): F over 8 decades, K/F from e^-2.5 to e^2.5 (0.08x..12x),
    T from one minute to 10 years (log-uniform), vol 5%..300%, r -2%..15%."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        forward = math.exp(rng.uniform(math.log(1e-2), math.log(1e6)))
        strike = forward * math.exp(rng.uniform(-2.5, 2.5))
        t = math.exp(rng.uniform(math.log(MINUTE), math.log(10.0)))
        cases.append(
            (
                forward,
                strike,
                t,
                rng.uniform(0.05, 3.0),
                rng.uniform(-0.02, 0.15),
                rng.random() < 0.5,
            )
        )
    return cases


def _quantlib(forward, strike, t, vol, rate, is_call) -> dict[str, float]:
    kind = ql.Option.Call if is_call else ql.Option.Put
    calc = ql.BlackCalculator(
        ql.PlainVanillaPayoff(kind, strike), forward, vol * math.sqrt(t), math.exp(-rate * t)
    )
    return {
        "price": calc.value(),
        "delta": calc.deltaForward(),
        "gamma": calc.gammaForward(),
        "vega": calc.vega(t),
        "theta": calc.theta(forward, t),
        "rho": calc.rho(t) + calc.dividendRho(t),
    }


def _quantlib_cdf_is_exact(forward, strike, t, vol) -> bool:
    """QuantLib's CumulativeNormalDistribution computes 0.5(1 + erf(x/√2)) for -7.5 < x < -5
    and loses up to 1.3e-8 relative there (N(-6): 9.865876577836621e-10 against the exact
    9.865876450377e-10); outside that band it is exact to ~1e-13."""
    s = vol * math.sqrt(t)
    d1 = math.log(forward / strike) / s + 0.5 * s
    return all(not (5.0 < abs(d) < 7.5) for d in (d1, d1 - s))


def _scales(forward, t, rate) -> dict[str, float]:
    """Natural size of each Greek: a difference below 1e-15 of it is double rounding."""
    df = math.exp(-rate * t)
    return {
        "price": df * forward,
        "delta": df,
        "gamma": df / forward,
        "vega": df * forward,
        "theta": df * forward / t,
        "rho": df * forward * t,
    }


def test_black76_matches_quantlib_to_1e_10_relative_on_random_cases():
    """Agreement is 1e-10 relative, with an absolute floor of 1e-15 of the Greek's natural
    size (QuantLib's put is DF(F(N(d1) - 1) ...), which cannot resolve less than that)."""
    compared = relative_only = 0
    for forward, strike, t, vol, rate, is_call in _random_cases(20260301, N_CASES):
        if not _quantlib_cdf_is_exact(forward, strike, t, vol):
            continue
        ours = black76(forward, strike, t, vol, rate, "call" if is_call else "put")._asdict()
        ref = _quantlib(forward, strike, t, vol, rate, is_call)
        scale = _scales(forward, t, rate)
        floor_binds = False
        for field in _FIELDS:
            tolerance = 1e-10 * abs(ref[field]) + 1e-15 * scale[field]
            assert abs(ours[field] - ref[field]) <= tolerance, (
                field,
                forward,
                strike,
                t,
                vol,
                rate,
                is_call,
                ours[field],
                ref[field],
            )
            floor_binds |= 1e-10 * abs(ref[field]) < 1e-15 * scale[field]
        compared += 1
        relative_only += not floor_binds
    assert compared >= 500
    assert relative_only >= 300  # cases where no field needed the absolute floor


def test_black76_in_quantlib_inexact_band_matches_scipy_normal_to_1e_12():
    """Where QuantLib's normal CDF is inexact (see above) the reference is the same formula on
    scipy's independent ``ndtr``; these are the deep-moneyness cases of the random set."""
    from scipy.special import ndtr

    checked = 0
    for forward, strike, t, vol, rate, is_call in _random_cases(20260301, N_CASES):
        if _quantlib_cdf_is_exact(forward, strike, t, vol):
            continue
        s = vol * math.sqrt(t)
        d1 = math.log(forward / strike) / s + 0.5 * s
        sign = 1.0 if is_call else -1.0
        df = math.exp(-rate * t)
        price = sign * df * (forward * ndtr(sign * d1) - strike * ndtr(sign * (d1 - s)))
        ours = black76(forward, strike, t, vol, rate, "call" if is_call else "put")
        assert ours.price == pytest.approx(price, rel=1e-12, abs=1e-15 * df * forward)
        assert ours.delta == pytest.approx(sign * df * ndtr(sign * d1), rel=1e-12)
        checked += 1
    assert checked > 0


def test_black76_short_expiry_and_extreme_moneyness_against_quantlib():
    """One-minute expiry at the money, and 10x / 0.1x strikes over one day and one year."""
    for forward, strike, t, vol in [
        (67000.0, 67000.0, MINUTE, 0.5),
        (67000.0, 67100.0, MINUTE, 0.8),
        (100.0, 1000.0, 1.0, 1.5),
        (100.0, 10.0, 1.0, 1.5),
        (100.0, 300.0, 1.0 / 365.0, 2.5),
    ]:
        for is_call in (True, False):
            ours = black76(forward, strike, t, vol, 0.03, "call" if is_call else "put")._asdict()
            ref = _quantlib(forward, strike, t, vol, 0.03, is_call)
            scale = _scales(forward, t, 0.03)
            for field in _FIELDS:
                tolerance = 1e-10 * abs(ref[field]) + 1e-15 * scale[field]
                assert abs(ours[field] - ref[field]) <= tolerance, (field, forward, strike)


def test_put_call_parity_and_greek_identities():
    """C - P = DF (F - K); call and put share gamma and vega; delta_C - delta_P = DF."""
    for forward, strike, t, vol, rate, _ in _random_cases(7, 200):
        call = black76(forward, strike, t, vol, rate, "call")
        put = black76(forward, strike, t, vol, rate, "put")
        df = math.exp(-rate * t)
        assert call.price - put.price == pytest.approx(
            df * (forward - strike), abs=1e-12 * max(forward, strike)
        )
        assert call.delta - put.delta == pytest.approx(df, rel=1e-14)
        assert call.gamma == put.gamma
        assert call.vega == put.vega


def test_black76_vec_equals_scalar():
    cases = _random_cases(11, 400)
    f, k, t, v, r, c = (np.array(column) for column in zip(*cases, strict=True))
    vec = black76_vec(f, k, t, v, r, c)
    for i, (forward, strike, tt, vol, rate, is_call) in enumerate(cases):
        one = black76(forward, strike, tt, vol, rate, "call" if is_call else "put")._asdict()
        scale = _scales(forward, tt, rate)
        for field in _FIELDS:
            tolerance = 1e-10 * abs(one[field]) + 1e-15 * scale[field]
            assert abs(getattr(vec, field)[i] - one[field]) <= tolerance, field


def test_to_coin_is_the_derivative_of_price_over_forward():
    """Coin delta = F d(V/F)/dF and coin gamma = d(coin delta)/dF, by central differences."""
    forward, strike, t, vol = 66342.3, 61000.0, 0.02, 0.63

    def coin(f: float) -> Greeks:
        return to_coin(black76(f, strike, t, vol, 0.0, "call"), f)

    h = forward * 1e-5
    at = coin(forward)
    up, down = coin(forward + h), coin(forward - h)
    assert at.delta == pytest.approx(forward * (up.price - down.price) / (2 * h), rel=1e-7)
    assert at.gamma == pytest.approx((up.delta - down.delta) / (2 * h), rel=1e-6)
    assert at.vega == pytest.approx(black76(forward, strike, t, vol, 0.0, "call").vega / forward)


# --- implied volatility -------------------------------------------------------------------


def _well_conditioned(price: float, vega: float, vol: float) -> bool:
    """A price rounded to double precision pins the volatility to 1e-8 only when
    eps x price / (vega x vol) is well below 1e-8 (deep in-the-money prices whose time
    value is below double resolution of the price carry no volatility at all)."""
    return vega > 0.0 and _EPS * price / (vega * vol) < 1e-10


def test_implied_vol_round_trips_to_1e_8_on_random_cases_out_and_in_the_money():
    otm_checked = itm_checked = 0
    for forward, strike, t, vol, rate, is_call in _random_cases(20260302, N_CASES):
        otm_kind = "call" if strike >= forward else "put"
        for kind in {otm_kind, "call" if is_call else "put"}:
            greeks = black76(forward, strike, t, vol, rate, kind)
            if kind != otm_kind and not _well_conditioned(greeks.price, greeks.vega, vol):
                continue
            if greeks.price / (math.exp(-rate * t) * math.sqrt(forward * strike)) < 1e-290:
                continue  # below the smallest normalised price a double can invert
            solved = implied_vol(greeks.price, forward, strike, t, rate, kind)
            assert solved == pytest.approx(vol, rel=1e-8), (kind, forward, strike, t, vol, rate)
            if kind == otm_kind:
                otm_checked += 1
            else:
                itm_checked += 1
    assert otm_checked >= 500
    assert itm_checked >= 100


@pytest.mark.parametrize(
    ("strike", "t", "vol", "kind"),
    [
        (120_000.0, 1.0 / 365.0, 0.5, "call"),  # 1.8x out of the money over one day
        (20_000.0, 7.0 / 365.0, 0.4, "put"),
        (40_000.0, 30.0 / 365.0, 0.5, "call"),  # deep in the money with visible time value
        (150_000.0, 7.0 / 365.0, 2.0, "put"),
        (66_300.0, MINUTE, 0.5, "call"),
    ],
)
def test_implied_vol_converges_deep_in_and_out_of_the_money(strike, t, vol, kind):
    forward = 66342.3
    price = black76(forward, strike, t, vol, 0.01, kind).price
    assert price > 0.0
    assert implied_vol(price, forward, strike, t, 0.01, kind) == pytest.approx(vol, rel=1e-8)


@pytest.mark.parametrize(
    ("price", "kind", "reason"),
    [
        (900.0, "call", "intrinsic"),  # intrinsic DF x 1000 = 999.0...
        (1000.0 * math.exp(-0.001), "call", "intrinsic"),
        (11_000.0, "call", "upper bound"),  # above DF x F
        (10_000.0, "put", "upper bound"),  # a put at or above DF x K (K = 9000)
        (0.0, "put", "intrinsic"),
        (-1.0, "put", "intrinsic"),
        (float("nan"), "call", "finite"),
    ],
)
def test_implied_vol_raises_a_clear_error_when_no_volatility_fits(price, kind, reason):
    with pytest.raises(ImpliedVolError) as error:
        implied_vol(price, 10_000.0, 9_000.0, 0.1, 0.01, kind)
    assert error.value.field == "price"
    assert reason in str(error.value)


def test_implied_vol_refuses_bad_inputs_naming_the_field():
    with pytest.raises(ValueError, match=r"t=0\.0"):
        implied_vol(1.0, 100.0, 100.0, 0.0, 0.0, "call")
    with pytest.raises(ValueError, match=r"kind='straddle'"):
        implied_vol(1.0, 100.0, 100.0, 1.0, 0.0, "straddle")
    with pytest.raises(ValueError, match=r"vol=-0\.2"):
        black76(100.0, 100.0, 1.0, -0.2, 0.0, "call")


def test_implied_vol_vec_equals_scalar_and_flags_bad_elements():
    cases = _random_cases(13, 300)
    forward, strike, t, vol, rate, _ = (np.array(column) for column in zip(*cases, strict=True))
    is_call = strike >= forward  # out of the money: every price carries its volatility
    prices = black76_vec(forward, strike, t, vol, rate, is_call).price
    usable = prices / (np.exp(-rate * t) * np.sqrt(forward * strike)) >= 1e-290
    forward, strike, t, vol, rate, is_call, prices = (
        a[usable] for a in (forward, strike, t, vol, rate, is_call, prices)
    )
    solved = implied_vol_vec(prices, forward, strike, t, rate, is_call)
    np.testing.assert_allclose(solved, vol, rtol=1e-8)
    for i in range(50):
        kind = "call" if is_call[i] else "put"
        scalar = implied_vol(prices[i], forward[i], strike[i], t[i], rate[i], kind)
        assert solved[i] == pytest.approx(scalar, rel=1e-12)
    bad = prices.copy()
    bad[3] = -1.0
    with pytest.raises(ImpliedVolError, match=r"price\[3\]"):
        implied_vol_vec(bad, forward, strike, t, rate, is_call)
    lenient = implied_vol_vec(bad, forward, strike, t, rate, is_call, on_error="nan")
    assert math.isnan(lenient[3])
    assert lenient[4] == pytest.approx(vol[4], rel=1e-8)
