"""Filtered historical simulation against ``arch`` on real BTC / ETH returns."""

from __future__ import annotations

import numpy as np
import pytest
from arch import arch_model

from fengkong.analytics.fhs import fhs_log_returns, filter_returns
from fengkong.analytics.returns import align_prices


@pytest.fixture(scope="module")
def window(daily_closes):
    return align_prices(daily_closes[["BTC", "ETH"]]).returns().to_numpy()[-1000:]


@pytest.fixture(scope="module")
def filtered(window):
    return filter_returns(window)


def test_variance_recursion_reproduces_arch_conditional_volatility(window, filtered):
    result = arch_model(window[:, 0] * 100, mean="Zero", vol="GARCH", rescale=False).fit(disp="off")
    np.testing.assert_allclose(
        filtered.sigma[:, 0], result.conditional_volatility / 100, rtol=1e-12
    )
    forecast = result.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0]
    assert filtered.sigma_next[0] == pytest.approx(np.sqrt(forecast) / 100, rel=1e-12)
    assert 0 < filtered.params[0].alpha + filtered.params[0].beta < 1


def test_one_day_scenarios_are_every_residual_day_rescaled_by_tomorrows_volatility(filtered):
    scenarios = fhs_log_returns(filtered, 1)
    assert scenarios.shape == filtered.residuals.shape
    np.testing.assert_array_equal(scenarios, filtered.residuals * filtered.sigma_next)


def test_ten_day_paths_are_seeded_and_wider_than_one_day(filtered):
    a = fhs_log_returns(filtered, 10, paths=4000, seed=5)
    assert np.array_equal(a, fhs_log_returns(filtered, 10, paths=4000, seed=5))
    assert not np.array_equal(a, fhs_log_returns(filtered, 10, paths=4000, seed=6))
    one_day = fhs_log_returns(filtered, 1).std(axis=0)
    assert np.all(a.std(axis=0) > 2.0 * one_day)
