"""The synthetic universe and population: documented distributions, seeded, exact in the ledger."""

from __future__ import annotations

import numpy as np
import pytest

from fengkong.model.enums import InstrumentKind, MarginMode, PositionMode, PositionSide
from fengkong.sim.population import PopulationParams, make_population
from fengkong.sim.universe import make_universe


@pytest.fixture(scope="module")
def universe():
    return make_universe(instruments=60, inverse=5, seed=2)


@pytest.fixture(scope="module")
def population(universe):
    return make_population(universe, accounts=40_000, seed=11)


def test_universe_lists_linear_and_inverse_perpetuals_with_six_derived_brackets(universe):
    kinds = [x.kind for x in universe.instruments]
    assert kinds[0] is InstrumentKind.LINEAR_PERPETUAL and universe.symbols[0] == "BTCUSDT-PERP"
    assert kinds[1] is InstrumentKind.INVERSE_PERPETUAL
    assert kinds[2:6] == [InstrumentKind.INVERSE_FUTURE] * 4
    assert all(k is InstrumentKind.LINEAR_PERPETUAL for k in kinds[6:])
    btc = universe.tables["BTCUSDT-PERP"].tiers
    assert [t.mmr for t in btc] == [400_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000]
    assert btc[2].cum == 1_300 * 10**8  # Binance's "Level 3 = 1,300 USDT"
    assert universe.tables["C40USDT-PERP"].tiers[0].cap == 5_000 * 10**8  # ranks 20-99: / 10
    assert make_universe(150, 5, seed=2).tables["C120USDT-PERP"].tiers[0].cap == 500 * 10**8
    again = make_universe(instruments=60, inverse=5, seed=2)
    assert again.instruments == universe.instruments and again.marks == universe.marks


def test_population_moments_match_the_documented_distributions(universe, population):
    p, params = population, PopulationParams()
    per_account = np.bincount(p.account, minlength=p.accounts)
    assert 2.5 <= per_account.mean() <= 2.86  # 2.86 drawn, repeats of an instrument dropped
    assert per_account.max() <= 4
    assert (per_account == 0).mean() == pytest.approx(0.02, abs=0.004)
    assert p.hedge.mean() == pytest.approx(params.hedge_share, abs=0.005)
    assert (p.qty > 0).mean() == pytest.approx(params.long_share, abs=0.01)
    pairs, first = np.unique(p.account * 1000 + p.inst, return_index=True)
    assert p.isolated[first].mean() == pytest.approx(params.isolated_share, abs=0.01)
    assert np.median(p.leverage) == pytest.approx(10.0, rel=0.05)
    assert p.leverage.min() >= 1.0 and p.leverage.max() <= 100.0
    assert np.median(p.notional) == pytest.approx(2_000, rel=0.05)
    assert np.std(np.log(p.notional)) == pytest.approx(1.2, rel=0.05)
    popular = np.bincount(p.inst, minlength=len(universe.instruments))
    assert popular.argmax() == 0  # BTCUSDT the most held
    marks = universe.mark_floats()[p.inst]
    entry = p.entry_price / 10.0 ** np.array([x.price_scale for x in universe.instruments])[p.inst]
    assert np.std(np.log(entry / marks)) == pytest.approx(0.02, rel=0.05)
    assert len(pairs) <= p.account.size


def test_population_is_deterministic_for_a_seed(universe, population):
    again = make_population(universe, accounts=40_000, seed=11)
    other = make_population(universe, accounts=40_000, seed=12)
    for name in ("account", "inst", "qty", "entry_price", "margin", "wallet"):
        np.testing.assert_array_equal(getattr(again, name), getattr(population, name))
    assert not np.array_equal(other.qty[:1000], population.qty[:1000])


def test_ledger_holds_exactly_the_population(universe):
    p = make_population(universe, accounts=2_000, seed=4)
    ledger = p.to_ledger()
    held = [(a, pos) for a in p.ids for pos in ledger.accounts[a].positions.values()]
    assert len(held) == p.account.size
    for k in range(0, p.account.size, 37):
        account = ledger.accounts[p.ids[p.account[k]]]
        symbol = universe.symbols[p.inst[k]]
        side = [PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT][p.leg[k]]
        position = account.positions[(symbol, side)]
        assert position.qty == p.qty[k]
        math = ledger.contract_math(symbol)
        assert position.entry_value == math.open_value(int(p.qty[k]), int(p.entry_price[k]))
        assert (position.margin_mode is MarginMode.ISOLATED) == p.isolated[k]
        assert position.isolated_margin == p.margin[k]
        mode = PositionMode.HEDGE if p.hedge[p.account[k]] else PositionMode.ONE_WAY
        assert account.position_mode is mode
    hedged = [a for a in p.ids if ledger.accounts[a].position_mode is PositionMode.HEDGE]
    assert hedged and all(
        s is not PositionSide.BOTH for a in hedged for (_, s) in ledger.accounts[a].positions
    )
