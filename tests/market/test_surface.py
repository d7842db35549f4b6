"""SVI volatility surface: recovery of known parameters, arbitrage detection and repair,
interpolation rules, and the fit to the real Deribit BTC chain (mark IVs and mark prices)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest

from fengkong.feeds.deribit_options import iter_deribit_options
from fengkong.market.deribit import YEAR_MS, valuation_window
from fengkong.market.options import black76_vec
from fengkong.market.surface import (
    DEFAULT_K_GRID,
    ButterflyArbitrageError,
    CalendarArbitrageError,
    SurfaceInputError,
    VolSurface,
)
from fengkong.market.svi import SviParameterError, SviParams, butterfly_g

CHAIN = "deribit-btc-options-snapshot-2026-03.csv"
F0 = 66_000.0
STRIKES = F0 * np.exp(np.linspace(-0.4, 0.4, 17))

# Gatheral & Jacquier (2014), Example 3.1 (Axel Vogt's slice, t = 1): negative density.
VOGT = SviParams(a=-0.0410, b=0.1331, rho=0.3060, m=0.3586, sigma=0.4153)


def _shape(t: float) -> SviParams:
    """An arbitrage-free family: total variance proportional to t at every k."""
    return SviParams(a=0.02 * t, b=0.12 * t, rho=-0.35, m=0.05, sigma=0.2)


def _chain_options(times, params):
    """Per-option arrays (t, forward, strike, iv) of the given slices at STRIKES."""
    t = np.repeat(times, STRIKES.size)
    w = np.concatenate([p.total_variance(np.log(STRIKES / F0)) for p in params])
    return t, np.full(t.size, F0), np.tile(STRIKES, len(times)), np.sqrt(w / t)


# --- synthetic ------------------------------------------------------------------------------


def test_known_svi_parameters_are_recovered_from_their_implied_vols():
    times = [0.05, 0.25, 1.0]
    truth = [_shape(t) for t in times]
    t, f, strike, iv = _chain_options(times, truth)
    surface = VolSurface.fit(t, f, strike, iv, repair=False)
    for fitted, expected in zip(surface.slices, truth, strict=True):
        assert not fitted.repaired
        assert fitted.rmse_iv < 1e-9
        np.testing.assert_allclose(fitted.params, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(surface.iv(strike, t, f), iv, rtol=1e-9)


def test_vogt_slice_is_a_butterfly_arbitrage_named_by_expiry_and_k():
    with pytest.raises(ButterflyArbitrageError) as caught:
        VolSurface.from_params([1.0], [F0], [VOGT])
    error = caught.value
    assert error.expiry == 1.0
    assert error.g < 0.0
    w, w1, w2 = VOGT.derivatives(error.k)
    assert butterfly_g(np.array(error.k), w, w1, w2) == pytest.approx(error.g)
    assert "k=" in str(error) and "t=1.0" in str(error)


def test_butterfly_violating_quotes_raise_unrepaired_and_are_repaired_to_g_nonnegative():
    k = np.linspace(-1.0, 1.5, 21)
    strike = F0 * np.exp(k)
    iv = np.sqrt(VOGT.total_variance(k))
    ones = np.ones(k.size)
    with pytest.raises(ButterflyArbitrageError) as caught:
        VolSurface.fit(ones, ones * F0, strike, iv, repair=False)
    assert caught.value.expiry == 1.0
    surface = VolSurface.fit(ones, ones * F0, strike, iv)
    (repaired,) = surface.slices
    assert repaired.repaired
    assert surface.butterfly_g(DEFAULT_K_GRID, 1.0).min() >= 0.0
    # the nearest arbitrage-free smile: 0.74 vol point RMSE, 1.85 points at worst
    assert repaired.rmse_iv < 0.008
    assert repaired.max_abs_iv < 0.019


def test_wing_steeper_than_lee_bound_is_a_butterfly_arbitrage_at_infinity():
    steep = SviParams(a=0.01, b=1.5, rho=0.5, m=0.0, sigma=0.1)  # b(1 + |rho|) = 2.25 > 2
    with pytest.raises(ButterflyArbitrageError) as caught:
        VolSurface.from_params([1.0], [F0], [steep])
    assert caught.value.k == math.inf
    assert caught.value.g == pytest.approx(0.25 - 2.25**2 / 16)


def test_crossing_total_variance_is_a_calendar_arbitrage_naming_both_expiries_and_k():
    early = _shape(0.5)
    late = SviParams(a=0.006, b=0.06, rho=0.3, m=0.0, sigma=0.2)  # below `early` on the left
    with pytest.raises(CalendarArbitrageError) as caught:
        VolSurface.from_params([0.5, 0.6], [F0, F0], [early, late])
    error = caught.value
    assert (error.expiry, error.previous) == (0.6, 0.5)
    assert error.w < error.w_prev
    assert late.total_variance(error.k) == pytest.approx(error.w)
    assert early.total_variance(error.k) == pytest.approx(error.w_prev)


def test_calendar_crossing_quotes_raise_unrepaired_and_are_repaired_monotone_in_t():
    early, late = _shape(0.5), SviParams(a=0.006, b=0.06, rho=0.3, m=0.0, sigma=0.2)
    t, f, strike, iv = _chain_options([0.5, 0.6], [early, late])
    with pytest.raises(CalendarArbitrageError) as caught:
        VolSurface.fit(t, f, strike, iv, repair=False)
    assert caught.value.expiry == 0.6
    surface = VolSurface.fit(t, f, strike, iv)
    assert surface.slices[1].repaired
    w = surface.total_variance(DEFAULT_K_GRID[None, :], np.linspace(0.45, 0.7, 26)[:, None])
    assert (np.diff(w, axis=0) >= 0.0).all()


def test_invalid_parameters_and_inputs_are_named():
    with pytest.raises(SviParameterError, match="rho"):
        VolSurface.from_params([1.0], [F0], [SviParams(0.01, 0.1, 1.0, 0.0, 0.1)])
    with pytest.raises(SviParameterError, match="minimum total variance"):
        VolSurface.from_params([1.0], [F0], [SviParams(-0.5, 0.1, 0.0, 0.0, 0.1)])
    t, f, strike, iv = _chain_options([0.5], [_shape(0.5)])
    with pytest.raises(SurfaceInputError, match=r"ivs\[3\]"):
        VolSurface.fit(t, f, strike, np.where(np.arange(iv.size) == 3, -0.1, iv))
    with pytest.raises(SurfaceInputError, match="strikes"):
        VolSurface.fit(t[:4], f[:4], strike[:4], iv[:4])
    surface = VolSurface.fit(t, f, strike, iv)
    with pytest.raises(SurfaceInputError, match="kind"):
        surface.mark_price(F0, F0, 0.5, np.array(["call", "cal"]))
    with pytest.raises(SurfaceInputError, match=r"t\[0\]"):
        surface.iv(F0, 0.0)


def test_total_variance_is_linear_in_t_between_expiries_and_flat_vol_outside():
    times = [0.1, 0.4]
    surface = VolSurface.from_params(times, [F0, F0 * 1.01], [_shape(0.1), _shape(0.4)])
    k = np.linspace(-1.0, 1.0, 9)
    w1, w2 = _shape(0.1).total_variance(k), _shape(0.4).total_variance(k)
    np.testing.assert_allclose(surface.total_variance(k, 0.1), w1, rtol=1e-15)
    np.testing.assert_allclose(surface.total_variance(k, 0.4), w2, rtol=1e-15)
    np.testing.assert_allclose(surface.total_variance(k, 0.25), 0.5 * (w1 + w2), rtol=1e-14)
    np.testing.assert_allclose(surface.total_variance(k, 0.02), w1 * 0.2, rtol=1e-14)
    np.testing.assert_allclose(surface.total_variance(k, 2.0), w2 * 5.0, rtol=1e-14)
    assert surface.forward(0.25) == pytest.approx(F0 * 1.01**0.5, rel=1e-14)
    assert surface.forward(5.0) == pytest.approx(F0 * 1.01, rel=1e-14)


def test_chain_evaluation_is_vectorized_and_equals_option_by_option():
    surface = VolSurface.from_params([0.1, 0.4], [F0, F0], [_shape(0.1), _shape(0.4)])
    rng = np.random.default_rng(5)
    strike = F0 * np.exp(rng.uniform(-0.6, 0.6, 50))
    t = rng.uniform(0.01, 1.0, 50)
    call = rng.random(50) < 0.5
    iv = surface.iv(strike, t, F0)
    price = surface.mark_price(F0, strike, t, call)
    for i in range(50):
        assert surface.iv(strike[i], t[i], F0) == iv[i]
        kind = "call" if call[i] else "put"
        single = surface.mark_price(F0, strike[i], t[i], kind)
        assert single == pytest.approx(price[i], rel=1e-14)
        assert single == pytest.approx(
            black76_vec(F0, strike[i], t[i], iv[i], 0.0, call[i]).price, rel=1e-14
        )
    calls = surface.mark_price(F0, strike, t, "call", rate=0.03)
    puts = surface.mark_price(F0, strike, t, "put", rate=0.03)
    np.testing.assert_allclose(calls - puts, np.exp(-0.03 * t) * (F0 - strike), atol=1e-7)


# --- real chain -----------------------------------------------------------------------------


@functools.cache
def _deribit(path: Path):
    """The real chain as arrays and the surface fitted to its mark IVs (fitted once)."""
    rows = list(iter_deribit_options(path))
    window = valuation_window(
        (r.expiration_timestamp, r.values["mark_iv"], r.values["theta"], r.values["vega"])
        for r in rows
    )
    chain = {
        "t": np.array([(r.expiration_timestamp - window.middle) / YEAR_MS for r in rows]),
        "f": np.array([r.f("underlying_price") for r in rows]),
        "k": np.array([r.f("strike") for r in rows]),
        "iv": np.array([r.f("mark_iv") / 100.0 for r in rows]),
        "call": np.array([r.kind.value == "call" for r in rows]),
        "mark": np.array([r.f("mark_price") for r in rows]),
    }
    return chain, VolSurface.fit(chain["t"], chain["f"], chain["k"], chain["iv"])


def test_deribit_chain_fit_is_within_tolerance_of_mark_ivs_on_every_expiry(shared_data):
    """Per expiry: RMSE ≤ 0.2 vol points, worst option ≤ 0.4 points (Deribit's own mark IVs
    wiggle by ~0.3 points between neighbouring strikes; docs/market.md has the table)."""
    chain, surface = _deribit(shared_data / CHAIN)
    assert len(surface.slices) == 8
    for s in surface.slices:
        assert s.rmse_iv <= 0.002, (s.t, s.rmse_iv)
        assert s.max_abs_iv <= 0.004, (s.t, s.max_abs_iv)
    fitted = surface.iv(chain["k"], chain["t"], chain["f"])
    assert np.sqrt(np.mean((fitted - chain["iv"]) ** 2)) <= 0.0015


def test_deribit_surface_has_no_butterfly_or_calendar_arbitrage(shared_data):
    """g ≥ 0 on the k grid at every listed expiry and at 10 times between each pair; total
    variance non-decreasing along a fine t grid from the first to past the last expiry."""
    _, surface = _deribit(shared_data / CHAIN)
    times = np.concatenate(
        [np.linspace(a, b, 11) for a, b in zip(surface.times[:-1], surface.times[1:], strict=True)]
    )
    g = surface.butterfly_g(DEFAULT_K_GRID[None, :], times[:, None])
    assert g.min() >= 0.0
    assert all(s.params.wing_slope <= 2.0 for s in surface.slices)
    t_grid = np.linspace(0.01, 1.2, 400)
    w = surface.total_variance(DEFAULT_K_GRID[None, :], t_grid[:, None])
    assert (np.diff(w, axis=0) >= 0.0).all()


def test_deribit_mark_prices_from_the_surface_are_near_deribit_mark_prices(shared_data):
    """Deribit prices in BTC = Black-76 USD price / underlying. Each surface price is within
    one tick (0.0001 BTC) plus 0.5 vol point of coin vega of the printed mark price; the chain's
    worst is 0.00025 BTC."""
    chain, surface = _deribit(shared_data / CHAIN)
    f, k, t, call = chain["f"], chain["k"], chain["t"], chain["call"]
    ours = surface.mark_price(f, k, t, call) / f
    coin_vega = black76_vec(f, k, t, chain["iv"], 0.0, call).vega / f
    error = np.abs(ours - chain["mark"])
    assert (error <= 0.0001 + 0.005 * coin_vega).all()
    assert error.max() < 0.0003
