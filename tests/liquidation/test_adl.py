"""ADL ranking reproduces the published Binance and BitMEX examples (margin-mechanics §1.5, §7)."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from fengkong.liquidation.adl import (
    adl_queue,
    binance_margin_ratio,
    binance_pnl_pct,
    binance_score,
    bitmex_score,
    instrument_ranks,
    quintiles,
)
from fengkong.liquidation.book import PositionBook
from fengkong.liquidation.screen import Screener
from tests.liquidation.books import Held, ledger_of
from tests.liquidation.test_screen import USDT, btc_universe


def exact(*values) -> np.ndarray:
    return np.array([F(v) for v in values], dtype=object)


def test_binance_forum_example_pnl_40_2_wallet_4_27_gives_leverage_pnl_1_26() -> None:
    """UP = 40.2, WB = 4.27 → PnL% = 9.41; margin ratio 13.42 % → LeveragePnL = 1.26
    (https://dev.binance.vision/t/how-to-caculating-leverage-pnl-quantile/17801, on the
    formula of the Binance ADL FAQ https://www.binance.com/en/support/faq/360033525471)."""
    upnl, wallet = exact("40.2"), exact("4.27")
    maint = exact(F("0.1342") * (F("4.27") + F("40.2")))  # the published 13.42 % ratio
    assert round(float(binance_pnl_pct(upnl, wallet)[0]), 2) == 9.41
    assert binance_margin_ratio(upnl, wallet, maint)[0] == F("0.1342")
    assert round(float(binance_score(upnl, wallet, maint)[0]), 2) == 1.26


def test_binance_score_floors_the_wallet_at_1_and_is_zero_when_bankrupt_or_losing() -> None:
    scores = binance_score(
        upnl=exact(10, -5, 30), wallet=exact("0.5", 100, -40), maint=exact(1, 1, 1)
    )
    assert scores[0] == F(10) / F("10.5")  # PnL% = 10 / max(1, 0.5); ratio 1 / 10.5
    assert scores[1] == 0  # a loss ranks last
    assert scores[2] == 0  # WB + UP <= 0: margin ratio 0


def test_bitmex_long_1_at_50000_mark_55000_bankrupt_45000_ranks_0_55() -> None:
    """PnL% 0.10 × effective leverage 5.5 = 0.55; a long 2 @ 52,000 (bankruptcy 50,000)
    ranks 0.6346 and is deleveraged first (https://bitmex.com/app/autoDeleveraging; numbers
    in margin-mechanics.md §7)."""
    scores = bitmex_score(
        mark_value=exact(55_000, 2 * 55_000),
        entry_value=exact(50_000, 2 * 52_000),
        bankrupt_value=exact(45_000, 2 * 50_000),
    )
    assert scores[0] == F("0.55")
    assert round(float(scores[1]), 4) == 0.6346
    assert adl_queue(scores, long=[True, True], side_long=True).tolist() == [1, 0]


def test_bitmex_losing_positions_divide_by_leverage_and_shorts_use_signed_values() -> None:
    scores = bitmex_score(
        mark_value=exact(55_000, -45_000),
        entry_value=exact(60_000, -50_000),
        bankrupt_value=exact(45_000, -55_000),
    )
    assert scores[0] == F(-1, 12) / F(11, 2)  # PnL% −1/12, leverage 55,000 / 10,000
    assert scores[1] == F("0.1") * F(9, 2)  # short: PnL% 0.1, leverage 45,000 / 10,000


def test_quintiles_rank_each_side_separately_in_20_percent_steps() -> None:
    scores = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 7.0, 7.0, 0.5])
    long = np.array([True] * 10 + [False] * 3)
    lights = quintiles(scores, long)
    assert lights[:10].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert lights[10:].tolist() == [5, 5, 2]  # tied shorts share the higher rank
    queue = adl_queue(scores, long, side_long=False)
    assert queue.tolist() == [10, 11, 12]  # ties by index


def test_instrument_ranks_on_a_book_use_each_positions_margin_group() -> None:
    universe = btc_universe()
    held = [
        Held("a", "BTCUSDT-PERP", 1_000, 400_000),  # long 1 BTC @ 40,000, cross
        Held("b", "BTCUSDT-PERP", 2_000, 450_000, isolated_margin=9_000 * USDT),
        Held("c", "BTCUSDT-PERP", -500, 500_000),  # short 0.5 @ 50,000: losing
    ]
    ledger = ledger_of(universe, held, {"a": {"USDT": 4_000 * USDT}, "c": {"USDT": 10**12}})
    book = PositionBook.from_ledger(ledger, universe.tables)
    book.instruments.set_mark("BTCUSDT-PERP", 500_000)
    book.instruments.set_mark("BTCUSD-PERP", 500_000)
    screener = Screener(book)
    screener.tick_all()
    accounts, legs, long, scores, lights = instrument_ranks(screener, "BTCUSDT-PERP")
    owners = [book.account_ids[a] for a in accounts]
    assert owners == ["a", "b", "c"] and legs.tolist() == [0, 0, 0]
    by_owner = dict(zip(owners, scores.tolist(), strict=True))
    # a: UP 10,000 on WB 4,000; MM 50,000 × 0.5 % − 50 = 200 (tier 2); equity 14,000
    assert by_owner["a"] == pytest.approx(10_000 / 4_000 * 200 / 14_000, rel=1e-12)
    # b: UP 10,000 on isolated 9,000; MM 100,000 × 0.5 % − 50 = 450; equity 19,000
    assert by_owner["b"] == pytest.approx(10_000 / 9_000 * 450 / 19_000, rel=1e-12)
    assert by_owner["c"] == 0.0
    assert dict(zip(owners, long.tolist(), strict=True)) == {"a": True, "b": True, "c": False}
    # a (0.0357) outranks b (0.0263): top half of two longs = 5 lights, bottom half = 3
    assert dict(zip(owners, lights.tolist(), strict=True)) == {"a": 5, "b": 3, "c": 5}
