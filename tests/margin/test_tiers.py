"""Tier tables: the maintenance-amount recurrence, validation, lookups (margin-mechanics §1.1)."""

from __future__ import annotations

import pytest

from fengkong.margin.tiers import RATE_ONE, TierTable, TierTableError, derive_cum
from fengkong.model.fixed import format_units, parse_units
from tests.margin.tables import BTCUSDT_2021_CUM, BTCUSDT_API, btcusdt_2021, rows

USDT = 10**8


def test_binance_2021_btcusdt_cum_column_is_derived_by_the_recurrence() -> None:
    """Binance 2021-03-18 BTCUSDT announcement (tables.BINANCE_2021_URL); the cum column of
    margin-mechanics.md §1.1 (computed, matching the public reverse-engineered gist)."""
    table = btcusdt_2021()
    assert [format_units(t.cum, 8) for t in table.tiers] == BTCUSDT_2021_CUM


def test_level_3_maintenance_amount_is_1300_usdt() -> None:
    """Binance liquidation-price FAQ: "Maintenance Amount on Level 3 = 250,000 × (1% − 0.5%)
    + 50 = 1,300 USDT"."""
    assert derive_cum(250_000 * USDT, RATE_ONE // 100, RATE_ONE // 200, 50 * USDT) == 1300 * USDT


def test_position_of_264000_usdt_has_mmr_1_percent_and_500000_has_amount_1300() -> None:
    """Binance FAQ: "position 264,000 USDT → MMR 1%"; "position 500,000 USDT → maintenance
    amount 1,300 USDT"."""
    table = btcusdt_2021()
    assert table.tier_for(264_000 * USDT).mmr == RATE_ONE // 100
    assert table.tier_for(500_000 * USDT).cum == 1300 * USDT


def test_piecewise_view_equals_cum_formula_pionex_example() -> None:
    """Pionex BTCUSDT example (https://www.pionex.com/blog/maintenance-margin/): 200,000
    notional, tier 1 0–150,000 at 0.5 %, tier 2 at 1 % with deduction 750:
    200,000 × 1% − 750 = 1,250 = 150,000 × 0.5% + 50,000 × 1%."""
    table = TierTable.parse(
        rows([("0", "150000", "100", "0.005", "0"), ("150000", "1000000", "50", "0.01", "750")],
             True),
        8,
    )  # fmt: skip
    assert table.maintenance_margin(200_000 * USDT) == 1250 * USDT


def test_bybit_inverse_piecewise_maintenance_is_0_45() -> None:
    """Bybit "Maintenance Margin (Inverse Contract)": (10 × 1%) + (10 × 2%) + (5 × 3%) = 0.45."""
    table = TierTable.parse(
        rows([("0", "10", "100", "0.01"), ("10", "20", "50", "0.02"), ("20", "30", "25", "0.03")]),
        8,
    )
    assert table.maintenance_margin(25 * 10**8) == parse_units("0.45", 8, field="mm")


def test_coin_m_level_5_recurrence_gives_1_81_btc() -> None:
    """Binance COIN-M FAQ (older page): "Level 5 = 50 BTC × (5% − 2.5%) + 0.56 BTC = 1.81 BTC"."""
    cum = derive_cum(50 * 10**8, 5 * RATE_ONE // 100, 25 * RATE_ONE // 1000, 56 * 10**6)
    assert cum == 181 * 10**6


def test_coin_m_maintenance_of_100_btcusd_contracts_at_25000_is_0_0016_btc() -> None:
    """Binance COIN-M FAQ: "100 BTCUSD contracts, mark 25,000 → notional 0.4 BTC (tier 1) →
    MM = 0.4 × 0.4% − 0 = 0.0016 BTC"."""
    table = TierTable.parse(rows([("0", "5", "125", "0.004"), ("5", "10", "100", "0.005")]), 8)
    notional_btc = 100 * 100 * 10**8 // 25_000
    assert notional_btc == 40_000_000
    assert table.maintenance_margin(notional_btc) == 160_000


def test_api_snapshot_cums_all_satisfy_the_recurrence() -> None:
    """Every cum of the /fapi/v1/leverageBracket snapshot (tables.API_SNAPSHOT_URL) satisfies
    the recurrence: the table loads with its stated cums."""
    table = TierTable.parse(rows(BTCUSDT_API, with_cum=True), 8)
    assert table.tiers[-1].cum == 103_046_300 * USDT


def test_a_stated_cum_that_disagrees_is_refused_with_its_path() -> None:
    bad = [list(r) for r in BTCUSDT_API]
    bad[3][4] = "46000"
    with pytest.raises(TierTableError) as caught:
        TierTable.parse(rows(bad, with_cum=True), 8)
    assert caught.value.problems == [
        "tiers[3].cum: 46000 disagrees with the recurrence floor × (MMR − previous MMR) + "
        "previous cum = 46300"
    ]


def test_every_problem_of_a_table_is_reported_at_once() -> None:
    bad = rows([("0", "100", "10", "0.01"), ("200", "300", "20", "0.005"), ("300", "x", "5", "2")])
    with pytest.raises(TierTableError) as caught:
        TierTable.parse(bad, 8)
    assert caught.value.problems == [
        "tiers[2].cap='x': not a finite decimal number",
        "tiers[2].mmr='2': above maximum 1",
    ]


def test_structural_problems_are_all_listed() -> None:
    bad = rows([("0", "100", "10", "0.01"), ("200", "300", "20", "0.005")])
    with pytest.raises(TierTableError) as caught:
        TierTable.parse(bad, 0)
    assert caught.value.problems == [
        "tiers[1].floor: 200 != previous cap 100",
        "tiers[1].mmr: 500000 < previous 1000000",
        "tiers[1].max_leverage: 20 > previous 10",
    ]


def test_brackets_hold_their_cap_and_nothing_beyond_the_last() -> None:
    table = btcusdt_2021()
    assert table.index_for(0) == 0
    assert table.index_for(50_000 * USDT) == 0
    assert table.index_for(50_000 * USDT + 1) == 1
    assert table.index_for(500_000_000 * USDT + 1) is None
    assert table.maintenance_margin(500_000_000 * USDT + 1) is None
    assert table.max_leverage(500_000_000 * USDT + 1) == 0


def test_maintenance_margin_is_continuous_at_every_boundary() -> None:
    table = btcusdt_2021()
    for tier in table.tiers[1:]:
        below = tier.floor * table.tier_for(tier.floor).mmr
        above = tier.floor * tier.mmr
        assert below - table.tier_for(tier.floor).cum * RATE_ONE == above - tier.cum * RATE_ONE
