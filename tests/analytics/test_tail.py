"""Historical-simulation VaR / ES: the documented quantile convention, checked exactly.

Reference: plain numpy. VaR_c is the lower c-quantile of the loss (``np.quantile(loss, c,
method="inverted_cdf")``, equivalently the (⌊nα⌋+1)-th smallest P&L); ES_c is the
Acerbi–Tasche mean of the ⌊nα⌋ worst P&Ls plus the boundary P&L weighted by nα − ⌊nα⌋.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fengkong.analytics.book import book_var_es
from fengkong.analytics.returns import align_prices
from fengkong.analytics.tail import smallest_sorted, tail_spec, var_es

CONFIDENCES = (0.95, 0.99, 0.995)


def numpy_var_es(pnl: np.ndarray, confidence: float) -> tuple[float, float]:
    """Independent reference: sort, index, average (see module docstring)."""
    x = np.sort(pnl)
    n_alpha = round(x.size * (1.0 - confidence), 9)
    m = math.floor(n_alpha)
    var = -x[m]
    es = var if n_alpha < 1 else -(x[:m].sum() + (n_alpha - m) * x[m]) / n_alpha
    return var, es


@pytest.fixture(scope="module")
def basket_returns(daily_closes):
    """Simple daily returns of the 9-asset basket over its common history."""
    return align_prices(daily_closes).returns("simple").to_numpy()


def test_hs_var_es_on_real_9_asset_history_equal_plain_numpy_exactly(basket_returns):
    exposures = np.full(basket_returns.shape[1], 1_000_000.0 / basket_returns.shape[1])
    pnl = basket_returns @ exposures
    assert pnl.size > 2000
    for c in CONFIDENCES:
        var, es = var_es(pnl, c)
        ref_var, ref_es = numpy_var_es(pnl, c)
        assert var == ref_var
        assert es == ref_es
        assert var == np.quantile(-pnl, c, method="inverted_cdf")
        assert es >= var


def test_book_of_portfolios_equals_numpy_per_portfolio_exactly(basket_returns):
    rng = np.random.default_rng(11)
    holdings = rng.normal(0.0, 1e5, size=(300, basket_returns.shape[1]))
    window = basket_returns[-1000:]
    var, es = book_var_es(holdings, window, CONFIDENCES)
    pnl = holdings @ window.T  # one matrix product, as the book does per chunk
    for i, c in enumerate(CONFIDENCES):
        for p in range(holdings.shape[0]):
            assert (var[i, p], es[i, p]) == numpy_var_es(pnl[p], c)


def test_1000_scenarios_at_99_percent_is_the_11th_worst_loss_and_mean_of_10_worst():
    pnl = -np.arange(1.0, 1001.0)  # losses 1..1000
    var, es = var_es(pnl, 0.99)
    assert var == 990.0  # 11th largest loss
    assert es == np.mean(np.arange(991.0, 1001.0))
    spec = tail_spec(1000, 0.99)
    assert (spec.whole, spec.fraction, spec.needed) == (10, 0.0, 11)


def test_fractional_tail_weights_the_boundary_scenario():
    pnl = -np.arange(1.0, 251.0)  # 250 scenarios, 97.5%: nα = 6.25
    var, es = var_es(pnl, 0.975)
    assert var == 244.0  # the 7th largest loss
    assert es == pytest.approx((250 + 249 + 248 + 247 + 246 + 245 + 0.25 * 244) / 6.25, rel=1e-15)


def test_fewer_scenarios_than_the_tail_needs_gives_the_worst_loss_for_both():
    var, es = var_es(np.array([5.0, -3.0, 1.0, -7.0]), 0.99)
    assert (var, es) == (7.0, 7.0)


def test_invalid_inputs_are_refused_naming_the_value():
    with pytest.raises(ValueError, match=r"confidence=1\.0"):
        var_es(np.zeros(10), 1.0)
    with pytest.raises(ValueError, match=r"pnl\[0, 2\]=nan"):
        var_es(np.array([1.0, 2.0, np.nan]), 0.9)


@given(
    arrays(np.float64, (7, 40), elements=st.integers(-50, 50).map(float)),
    st.integers(1, 40),
)
def test_smallest_sorted_equals_the_head_of_a_full_sort_with_ties(matrix, k):
    assert np.array_equal(smallest_sorted(matrix, k), np.sort(matrix, axis=1)[:, :k])


@given(
    arrays(np.float64, 200, elements=st.floats(-1e6, 1e6, allow_nan=False)),
    st.sampled_from((*CONFIDENCES, 0.9, 0.975)),
)
def test_var_es_equal_the_reference_for_any_pnl(pnl, confidence):
    assert var_es(pnl, confidence) == numpy_var_es(pnl, confidence)


def test_sparse_books_skip_the_dense_product_and_agree_with_numpy(basket_returns):
    """Accounts holding 2 of 9 assets: P&L accumulated per held column, in column order."""
    rng = np.random.default_rng(5)
    window = basket_returns[-1000:] * 1e4
    holdings = np.zeros((500, window.shape[1]))
    for row in holdings:
        row[rng.choice(window.shape[1], size=2, replace=False)] = rng.normal(0, 50, size=2)
    var, es = book_var_es(holdings, window, CONFIDENCES)  # density 2/9 <= 25%: sparse path
    for p in (0, 137, 499):
        pnl = np.zeros(window.shape[0])
        for column in np.flatnonzero(holdings[p]):
            pnl += holdings[p, column] * window[:, column]
        for i, c in enumerate(CONFIDENCES):
            assert (var[i, p], es[i, p]) == numpy_var_es(pnl, c)
    dense_var, dense_es = numpy_var_es((holdings @ window.T)[137], 0.99)
    assert var[1, 137] == pytest.approx(dense_var, rel=1e-12)
    assert es[1, 137] == pytest.approx(dense_es, rel=1e-12)
