"""Float screening never misses an exact liquidation candidate; the exact re-check decides."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fengkong.liquidation.book import PositionBook
from fengkong.liquidation.exact import account_breaches, exact_candidates
from fengkong.liquidation.instruments import MissingMarkError
from fengkong.liquidation.screen import Screener
from fengkong.margin.contract import notional, unrealized_pnl
from fengkong.model.assets import Asset
from fengkong.model.enums import InstrumentKind, InstrumentStatus
from fengkong.model.instruments import Instrument
from fengkong.sim.population import make_population
from fengkong.sim.universe import Universe, make_universe
from tests.liquidation.books import Held, ledger_of
from tests.margin.tables import btcusdt_2021, coin_table

USDT = 10**8


def btc_universe() -> Universe:
    """BTCUSDT-PERP (tick 0.1, lot 0.001, Binance 2021 tiers) and BTCUSD-PERP (100 USD)."""
    common = dict(
        base="BTC", multiplier_scale=0, tick_size=1, lot_size=1, min_qty=1, max_qty=10**12,
        min_notional=0, status=InstrumentStatus.TRADING, price_scale=1,
    )  # fmt: skip
    linear = Instrument(
        symbol="BTCUSDT-PERP",
        kind=InstrumentKind.LINEAR_PERPETUAL,
        quote="USDT",
        settle="USDT",
        qty_scale=3,
        multiplier=1,
        **common,
    )
    inverse = Instrument(
        symbol="BTCUSD-PERP",
        kind=InstrumentKind.INVERSE_PERPETUAL,
        quote="USD",
        settle="BTC",
        qty_scale=0,
        multiplier=100,
        **common,
    )
    assets = (Asset(code="USDT", scale=8), Asset(code="BTC", scale=8), Asset(code="USD", scale=2))
    tables = {"BTCUSDT-PERP": btcusdt_2021(), "BTCUSD-PERP": coin_table()}
    return Universe(assets, (linear, inverse), tables, (500_000, 500_000))  # fmt: skip


def screen(ledger, tables, marks: dict[str, int]) -> tuple[PositionBook, Screener, list[str]]:
    book = PositionBook.from_ledger(ledger, tables)
    for symbol, price in marks.items():
        book.instruments.set_mark(symbol, price)
    screener = Screener(book)
    flagged = screener.tick_all()
    return book, screener, [book.account_ids[a] for a in flagged]


@pytest.mark.parametrize(("mark", "liquidated"), [(251_005, False), (251_003, True)])
def test_cross_long_at_binance_faq_liquidation_price_25100_40(mark: int, liquidated: bool) -> None:
    """Wallet 500 USDT, long 0.02 BTC at 50,000, cross: LP = 25,100.40 (Binance margin-ratio
    FAQ, https://binance.com/en/support/faq/25edcd7fe0e544839d0847b8cbb2e400). A tenth above
    it the account is safe, a tenth below it is liquidated."""
    universe = btc_universe()
    ledger = ledger_of(universe, [Held("alice", "BTCUSDT-PERP", 20, 500_000)],
                       {"alice": {"USDT": 500 * USDT}})  # fmt: skip
    marks = {"BTCUSDT-PERP": mark, "BTCUSD-PERP": 500_000}
    book, screener, flagged = screen(ledger, universe.tables, marks)
    price = mark / 10
    equity, maintenance = 500 + 0.02 * (price - 50_000), 0.02 * price * 0.004
    a, s = book.account_index["alice"], book.instruments.asset_index["USDT"]
    assert screener.equity[a, s] == pytest.approx(equity, rel=1e-12)
    assert screener.maint[a, s] == pytest.approx(maintenance, rel=1e-12)
    assert screener.ratio[a, s] == pytest.approx(maintenance / equity, rel=1e-9)
    assert (exact_candidates(ledger, universe.tables, marks) == ["alice"]) is liquidated
    assert (flagged == ["alice"]) is liquidated  # 0.002 USDT from MM is far outside the band


def test_far_from_liquidation_is_not_flagged() -> None:
    universe = btc_universe()
    ledger = ledger_of(universe, [Held("bob", "BTCUSDT-PERP", 20, 500_000)],
                       {"bob": {"USDT": 500 * USDT}})  # fmt: skip
    book, screener, flagged = screen(ledger, universe.tables,
                                     {"BTCUSDT-PERP": 260_000, "BTCUSD-PERP": 500_000})  # fmt: skip
    assert flagged == []
    assert screener.ratio[0, book.instruments.asset_index["USDT"]] == pytest.approx(
        0.02 * 26_000 * 0.004 / (500 - 480), rel=1e-9
    )


def exact_equity_and_mm(ledger, universe, held: list[Held], marks) -> tuple[int, int]:
    equity = mm = 0
    for h in held:
        math = ledger.contract_math(h.symbol)
        value = math.open_value(h.qty, h.entry_price)
        equity += unrealized_pnl(math, h.qty, value, marks[h.symbol])
        mm += universe.tables[h.symbol].maintenance_margin(notional(math, h.qty, marks[h.symbol]))
    return equity, mm


@st.composite
def boundary_accounts(draw):
    """One or two positions priced so that notionals sit on or near bracket caps, and a wallet
    within ±30 minor units of the exact maintenance margin."""
    universe = btc_universe()
    marks = {}
    held = []
    isolated = draw(st.booleans())
    for symbol in draw(st.sampled_from([["BTCUSDT-PERP"], ["BTCUSD-PERP"],
                                        ["BTCUSDT-PERP", "BTCUSD-PERP"]])):  # fmt: skip
        inverse = symbol == "BTCUSD-PERP"
        side = draw(st.sampled_from([1, -1]))
        qty = side * draw(st.integers(1, 50_000 if inverse else 20_000))
        entry = draw(st.integers(200_000, 1_000_000))
        caps = universe.tables[symbol].tiers
        if draw(st.booleans()):  # put the notional at a bracket cap, give or take a tick
            cap = caps[draw(st.integers(0, 3))].cap / 10**8
            size = abs(qty) * (100 if inverse else 0.001)
            price = size / cap if inverse else cap / size
            mark = max(1, round(price * 10) + draw(st.integers(-2, 2)))
        else:
            mark = max(1, round(entry * draw(st.floats(0.5, 1.5))))
        marks[symbol] = mark
        held.append((symbol, qty, entry))
    marks.setdefault("BTCUSDT-PERP", 500_000)
    marks.setdefault("BTCUSD-PERP", 500_000)
    delta = draw(st.integers(-30, 30))
    return universe, held, marks, isolated and len(held) == 1, delta


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boundary_accounts())
def test_every_exact_candidate_is_screened_on_bracket_and_margin_boundaries(case) -> None:
    universe, held, marks, isolated, delta = case
    plain = [Held("u", s, q, e) for s, q, e in held]
    probe = ledger_of(universe, plain, {})
    upnl, mm = exact_equity_and_mm(probe, universe, plain, marks)
    if isolated:
        margin = mm - upnl + delta
        positions = [Held("u", held[0][0], held[0][1], held[0][2], isolated_margin=margin)]
        wallets = {"u": {"USDT": 10**12, "BTC": 10**12}}
    else:
        positions = plain
        settle = {universe.instruments[i].settle for i in range(2)
                  if universe.instruments[i].symbol in {h[0] for h in held}}  # fmt: skip
        if len(settle) == 2:  # the linear group on the boundary, the inverse one far from it
            upnl_l, mm_l = exact_equity_and_mm(probe, universe, plain[:1], marks)
            wallets = {"u": {"USDT": mm_l - upnl_l + delta, "BTC": 10**15}}
        else:
            asset = "BTC" if held[0][0] == "BTCUSD-PERP" else "USDT"
            wallets = {"u": {asset: mm - upnl + delta}}
    ledger = ledger_of(universe, positions, wallets)
    exact = exact_candidates(ledger, universe.tables, marks, ["u"])
    assert (exact == ["u"]) is (delta <= 0)
    _, _, flagged = screen(ledger, universe.tables, marks)
    event("exact candidate" if exact else "not a candidate")
    event("flagged" if flagged else "not flagged")
    if exact:
        assert flagged == ["u"], "float screening missed an exact candidate"


def test_notional_beyond_the_last_bracket_is_a_candidate() -> None:
    universe = btc_universe()
    # 2,000 BTC at 300,000 = 600M USDT > the 500M last cap, with ample wallet
    ledger = ledger_of(universe, [Held("whale", "BTCUSDT-PERP", 2_000_000, 3_000_000)],
                       {"whale": {"USDT": 10**9 * USDT}})  # fmt: skip
    marks = {"BTCUSDT-PERP": 3_000_000, "BTCUSD-PERP": 500_000}
    (breach,) = account_breaches(ledger, "whale", universe.tables, marks)
    assert breach.maintenance is None and breach.symbol is None
    assert screen(ledger, universe.tables, marks)[2] == ["whale"]


def test_screening_refuses_without_a_mark_for_a_held_instrument() -> None:
    universe = btc_universe()
    ledger = ledger_of(universe, [Held("bob", "BTCUSD-PERP", 10, 500_000)],
                       {"bob": {"BTC": USDT}})  # fmt: skip
    book = PositionBook.from_ledger(ledger, universe.tables)
    book.instruments.set_mark("BTCUSDT-PERP", 500_000)
    with pytest.raises(MissingMarkError, match="BTCUSD-PERP"):
        Screener(book).tick_all()
    with pytest.raises(MissingMarkError):
        exact_candidates(ledger, universe.tables, {"BTCUSDT-PERP": 500_000})


@pytest.fixture(scope="module")
def population():
    universe = make_universe(instruments=40, inverse=4, seed=3)
    pop = make_population(universe, accounts=3_000, seed=9)
    ledger = pop.to_ledger()
    return universe, ledger, PositionBook.from_ledger(ledger, universe.tables)


def shocked(universe: Universe, rng, sigma: float) -> dict[str, int]:
    moves = np.exp(rng.normal(-0.01, sigma, size=len(universe.marks)))
    return {s: max(1, round(m * k)) for s, m, k in zip(universe.symbols, universe.marks, moves,
                                                       strict=True)}  # fmt: skip


def test_screened_set_after_exact_recheck_equals_the_exact_set_on_random_books(population):
    universe, ledger, book = population
    rng = np.random.default_rng(2024)
    screener = Screener(book)
    for _ in range(6):
        marks = shocked(universe, rng, 0.04)
        for symbol, price in marks.items():
            book.instruments.set_mark(symbol, price)
        flagged = [book.account_ids[a] for a in screener.tick_all()]
        exact = exact_candidates(ledger, universe.tables, marks)
        assert set(exact) <= set(flagged), "no false negatives"
        assert exact_candidates(ledger, universe.tables, marks, flagged) == exact
        assert len(flagged) - len(exact) <= max(3, len(exact) // 50), "the band stays narrow"
        assert exact, "the shocks liquidate someone"


def test_one_instrument_tick_equals_a_full_revaluation(population):
    universe, _, book = population
    rng = np.random.default_rng(7)
    screener = Screener(book)
    marks = shocked(universe, rng, 0.03)
    for symbol, price in marks.items():
        book.instruments.set_mark(symbol, price)
    screener.tick_all()
    for symbol in ("BTCUSDT-PERP", "BTCUSD-PERP", universe.symbols[17]):
        price = round(marks[symbol] * 0.9)
        flagged = screener.tick_instrument(symbol, price)
        full = Screener(book)
        full.tick_all()
        n = book.accounts
        np.testing.assert_array_equal(screener.flags[:n], full.flags[:n])
        np.testing.assert_array_equal(screener.equity[:n], full.equity[:n])
        holders = book.holder_accounts(book.instruments.index[symbol])
        assert set(flagged.tolist()) == set(holders[full.flags[holders] == 1].tolist())


def test_parallel_and_serial_kernels_agree(population, monkeypatch):
    import fengkong.liquidation.screen as screen_module

    universe, _, book = population
    marks = shocked(universe, np.random.default_rng(3), 0.05)
    for symbol, price in marks.items():
        book.instruments.set_mark(symbol, price)
    serial = Screener(book)
    serial.tick_all()
    monkeypatch.setattr(screen_module, "PARALLEL_MIN_ACCOUNTS", 0)
    parallel = Screener(book)
    parallel.tick_all()
    n = book.accounts
    np.testing.assert_array_equal(serial.flags[:n], parallel.flags[:n])
    np.testing.assert_array_equal(serial.equity[:n], parallel.equity[:n])
    np.testing.assert_array_equal(serial.maint[:n], parallel.maint[:n])
    holders = np.sort(book.holder_accounts(0))
    np.testing.assert_array_equal(parallel.revalue(holders), serial.revalue(holders))


def test_book_kept_in_step_by_events_screens_every_exact_candidate() -> None:
    """Fills through the engine, the book synced and the touched accounts revalued after each
    one (as the liquidation component will): at marks that put accounts under water, the
    screen misses no exact candidate, and the exact re-check of its flags is the exact set."""
    from fengkong.engine import Engine
    from fengkong.model.events import Fill, MarginTransfer
    from tests.liquidation.test_book import TABLES, random_log

    engine = Engine()
    ledger = engine.component("ledger")
    book = screener = None
    marks = {"BTCUSDT-PERP": 500_000, "BTCUSD-PERP": 500_000}
    for item in random_log(seed=3, fills=400, usdt="1500", btc="0.03"):
        engine.process(item)
        touched = (
            [item.buyer, item.seller] if isinstance(item, Fill)
            else [item.account] if isinstance(item, MarginTransfer) else []
        )  # fmt: skip
        if not touched:
            continue
        if book is None:
            book = PositionBook.from_ledger(ledger, TABLES)
            for symbol, price in marks.items():
                book.instruments.set_mark(symbol, price)
            screener = Screener(book)
        for account in touched:
            book.sync_account(ledger, account)
        screener.revalue([book.account_index[a] for a in dict.fromkeys(touched)])
    screener.tick_all()
    found = set()
    for linear, inverse in ((400_000, 500_000), (500_000, 620_000), (620_000, 400_000)):
        screener.tick_instrument("BTCUSDT-PERP", linear)
        screener.tick_instrument("BTCUSD-PERP", inverse)
        marks = {"BTCUSDT-PERP": linear, "BTCUSD-PERP": inverse}
        exact = exact_candidates(ledger, TABLES, marks)
        flagged = [book.account_ids[a] for a in screener.candidates()]
        assert set(exact) <= set(flagged)
        assert exact_candidates(ledger, TABLES, marks, flagged) == [
            a for a in ledger.accounts if a in set(exact)
        ]
        found.update(exact)
    assert len(found) >= 5, "the marks put cross and isolated, one-way and hedge accounts under"
