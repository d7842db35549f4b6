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
from fengkong.model.enums import InstrumentKind, InstrumentStatus, MarginMode, PositionSide
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


def _fine_flags(screener: Screener) -> np.ndarray:
    """The float64 check (band 1e-9) of every account, which the coarse screen must cover."""
    from fengkong.liquidation.screen import _tick_all_serial

    book = screener.book
    screener._fit()
    flags = np.zeros(max(book.accounts, 1), dtype=np.bool_)
    _tick_all_serial(book.accounts, *screener._fine_arrays(flags))
    return flags[: book.accounts]


def test_coarse_screen_covers_the_float64_check_and_stays_narrow(population):
    """Coarse flags ⊇ fine (float64, band 1e-9) flags ⊇ exact candidates, and the coarse band
    (2.5e-7 of the gross) adds only a handful of accounts."""
    universe, _, book = population
    rng = np.random.default_rng(11)
    screener = Screener(book)
    for _ in range(4):
        marks = shocked(universe, rng, 0.04)
        for symbol, price in marks.items():
            book.instruments.set_mark(symbol, price)
        coarse = screener.tick_all()
        fine = np.flatnonzero(_fine_flags(screener))
        assert set(fine.tolist()) <= set(coarse.tolist())
        assert coarse.size - fine.size <= max(3, fine.size // 100)


def _random_change(book: PositionBook, universe: Universe, rng) -> int:
    """One random change to the book: a position opened, resized, flipped, closed (one-way,
    hedge or isolated) or a wallet moved; returns the account touched."""
    a = int(rng.integers(book.accounts))
    account_id = book.account_ids[a]
    slots = list(book.slots_of(a))
    choice = rng.random()
    if choice < 0.2:
        asset = universe.assets[int(rng.integers(2))].code
        book.set_wallet(account_id, asset, int(rng.integers(0, 10**12)))
        return a
    if slots and choice < 0.5:
        slot = slots[int(rng.integers(len(slots)))]
        symbol = book.instruments.symbols[int(book.inst[slot])]
        side = [PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT][int(book.leg[slot])]
    else:
        symbol = universe.symbols[int(rng.integers(len(universe.symbols)))]
        side = PositionSide.BOTH
        if any(book.inst[s] == book.instruments.index[symbol] for s in slots):
            return a
    i = book.instruments.index[symbol]
    math = book.instruments.math[i]
    mark = book.instruments.marks[i] * 10 ** book.instruments.price_scale[i]
    qty = int(rng.integers(-2000, 2001)) * (0 if rng.random() < 0.2 else 1)
    if side is PositionSide.LONG:
        qty = abs(qty)
    elif side is PositionSide.SHORT:
        qty = -abs(qty)
    entry = math.open_value(qty, max(1, round(mark * rng.uniform(0.9, 1.1)))) if qty else 0
    isolated = rng.random() < 0.3
    book.apply_position(
        account_id, symbol, qty, entry, side=side,
        margin_mode=MarginMode.ISOLATED if isolated else MarginMode.CROSS,
        isolated_margin=int(abs(entry) // 10) if isolated else 0,
    )  # fmt: skip
    return a


@pytest.mark.parametrize("parallel", [False, True])
def test_incremental_ticks_interleaved_with_book_changes_equal_a_fresh_screen(
    population, monkeypatch, parallel
):
    """Random mark moves (``tick_instrument``, or ``set_mark`` then ``revalue``) interleaved
    with random position and wallet changes (revalued at once, or left for the next tick to
    catch from the change log): after every step the incrementally kept screen flags exactly
    the accounts a fresh whole-book screen flags (every account it has valued since its last
    change), and its per-group headroom stays within float noise of a fresh one."""
    import copy

    import fengkong.liquidation.screen as screen_module

    if parallel:
        monkeypatch.setattr(screen_module, "PARALLEL_MIN_ACCOUNTS", 0)
    universe, _, shared = population
    book = copy.deepcopy(shared)
    rng = np.random.default_rng(5 + parallel)
    marks = shocked(universe, rng, 0.03)
    for symbol, price in marks.items():
        book.instruments.set_mark(symbol, price)
    screener = Screener(book)
    screener.tick_all()
    popular = universe.symbols[:6]
    changed = whole = 0
    for _ in range(120):
        action = rng.random()
        if action < 0.35:
            for _ in range(int(rng.integers(1, 6))):
                a = _random_change(book, universe, rng)
                if rng.random() < 0.5:
                    screener.revalue([a])
                changed += 1
            continue
        symbol = popular[int(rng.integers(len(popular)))] if action < 0.8 else (
            universe.symbols[int(rng.integers(len(universe.symbols)))]
        )  # fmt: skip
        marks[symbol] = max(1, round(marks[symbol] * float(np.exp(rng.normal(0, 0.03)))))
        if action < 0.9:
            flagged = screener.tick_instrument(symbol, marks[symbol])
            holders = book.holder_accounts(book.instruments.index[symbol])
            assert set(flagged.tolist()) == set(holders[screener.flags[holders]].tolist())
        else:
            book.instruments.set_mark(symbol, marks[symbol])
            screener.revalue([int(rng.integers(book.accounts))])
        fresh = Screener(book)
        fresh.tick_all()
        n = book.accounts
        clean = (screener.bits[:n] & screen_module._DIRTY) == 0
        whole += int((~clean).sum())
        np.testing.assert_array_equal(screener.flags[:n][clean], fresh.flags[:n][clean])
        assert set(np.flatnonzero(_fine_flags(fresh)).tolist()) <= set(
            np.flatnonzero(fresh.flags[:n]).tolist()
        )
        head, again = screener.head[:, :n][:, clean], fresh.head[:, :n][:, clean]
        finite = np.isfinite(again)
        np.testing.assert_array_equal(np.isfinite(head), finite)
        np.testing.assert_allclose(head[finite], again[finite], rtol=1e-9, atol=1e-6)
    assert changed > 100 and whole > 0, "changes were made, some left for the ticks to catch"
    assert screener.candidates().size > 0


def test_engine_fills_and_mark_moves_interleaved_screen_every_exact_candidate() -> None:
    """Fills through the engine with the book synced after each (revalued at once or left
    for the next tick), marks moving by incremental ticks in between: at every checkpoint the
    screen misses no exact candidate and the exact re-check of its flags is the exact set."""
    from fengkong.engine import Engine
    from fengkong.model.events import Fill, MarginTransfer
    from tests.liquidation.test_book import TABLES, random_log

    engine = Engine()
    ledger = engine.component("ledger")
    book = screener = None
    marks = {"BTCUSDT-PERP": 500_000, "BTCUSD-PERP": 500_000}
    rng = np.random.default_rng(17)
    found: set[str] = set()
    for n, item in enumerate(random_log(seed=8, fills=500, usdt="1500", btc="0.03")):
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
            screener.tick_all()
        for account in touched:
            book.sync_account(ledger, account)
        if rng.random() < 0.5:
            screener.revalue([book.account_index[a] for a in dict.fromkeys(touched)])
        symbol = "BTCUSDT-PERP" if rng.random() < 0.5 else "BTCUSD-PERP"
        marks[symbol] = int(np.clip(marks[symbol] * np.exp(rng.normal(0, 0.04)), 350_000, 700_000))
        screener.tick_instrument(symbol, marks[symbol])
        if n % 10 == 0:
            for symbol in marks:  # every holder valued since its last change
                screener.tick_instrument(symbol, marks[symbol])
            exact = exact_candidates(ledger, TABLES, marks)
            flagged = [book.account_ids[a] for a in screener.candidates()]
            assert set(exact) <= set(flagged), "no false negatives"
            assert exact_candidates(ledger, TABLES, marks, flagged) == exact
            found.update(exact)
    assert len(found) >= 5, "the moves put cross and isolated, one-way and hedge accounts under"


def test_three_settlement_assets_use_the_general_kernel_and_miss_nothing() -> None:
    """USDT-, BTC- and ETH-margined perpetuals (the per-asset sums of the general kernel):
    random positions and wallets near maintenance, random marks, incremental ticks."""
    import msgspec

    from fengkong.model.assets import Asset

    base = btc_universe()
    eth = msgspec.structs.replace(base.instruments[1], symbol="ETHUSD-PERP", base="ETH",
                                  settle="ETH", multiplier=10)  # fmt: skip
    universe = Universe(
        (*base.assets, Asset(code="ETH", scale=8)),
        (*base.instruments, eth),
        {**base.tables, "ETHUSD-PERP": coin_table()},
        (500_000, 500_000, 30_000),
    )
    rng = np.random.default_rng(3)
    held, wallets = [], {}
    for k in range(300):
        name = f"u{k}"
        for symbol in rng.choice(universe.symbols, size=int(rng.integers(1, 4)), replace=False):
            entry = 30_000 if symbol == "ETHUSD-PERP" else 500_000
            entry = int(entry * rng.uniform(0.95, 1.05))
            qty = int(rng.integers(1, 200)) * int(rng.choice([-1, 1]))
            iso = int(rng.integers(10**5, 10**7)) if rng.random() < 0.2 else None
            held.append(Held(name, str(symbol), qty, entry, isolated_margin=iso))
        wallets[name] = {a: int(rng.integers(10**5, 10**8)) for a in ("USDT", "BTC", "ETH")}
    ledger = ledger_of(universe, held, wallets)
    book = PositionBook.from_ledger(ledger, universe.tables)
    assert book.wallet.shape[1] == 3
    marks = dict(zip(universe.symbols, universe.marks, strict=True))
    for symbol, price in marks.items():
        book.instruments.set_mark(symbol, price)
    screener = Screener(book)
    screener.tick_all()
    seen = 0
    for _ in range(30):
        symbol = universe.symbols[int(rng.integers(3))]
        marks[symbol] = max(1, round(marks[symbol] * float(np.exp(rng.normal(0, 0.05)))))
        screener.tick_instrument(symbol, marks[symbol])
        exact = exact_candidates(ledger, universe.tables, marks)
        flagged = [book.account_ids[a] for a in screener.candidates()]
        assert set(exact) <= set(flagged)
        assert exact_candidates(ledger, universe.tables, marks, flagged) == exact
        fresh = Screener(book)
        np.testing.assert_array_equal(fresh.tick_all(), screener.candidates())
        seen += len(exact)
    assert seen > 0


def test_a_position_float32_cannot_hold_is_always_flagged() -> None:
    """A NaN in the float32 copies (a magnitude float32 cannot hold to 2^-24) is a flag."""
    universe = btc_universe()
    ledger = ledger_of(universe, [Held("bob", "BTCUSDT-PERP", 20, 500_000)],
                       {"bob": {"USDT": 500 * USDT}})  # fmt: skip
    book = PositionBook.from_ledger(ledger, universe.tables)
    for symbol in ("BTCUSDT-PERP", "BTCUSD-PERP"):
        book.instruments.set_mark(symbol, 500_000)
    screener = Screener(book)
    assert screener.tick_all().size == 0
    book.fentry[book.start[0]] = np.nan
    assert screener.tick_all().tolist() == [0]
    assert screener.tick_instrument("BTCUSDT-PERP", 500_010).tolist() == [0]


def test_one_instrument_tick_refuses_when_a_holder_lacks_another_mark() -> None:
    universe = btc_universe()
    ledger = ledger_of(universe, [Held("bob", "BTCUSD-PERP", 10, 500_000),
                                  Held("bob", "BTCUSDT-PERP", 20, 500_000)],
                       {"bob": {"BTC": USDT, "USDT": 10**4 * USDT}})  # fmt: skip
    book = PositionBook.from_ledger(ledger, universe.tables)
    for symbol in ("BTCUSDT-PERP", "BTCUSD-PERP"):
        book.instruments.set_mark(symbol, 500_000)
    screener = Screener(book)
    screener.tick_all()
    book.instruments.clear_mark("BTCUSD-PERP")
    with pytest.raises(MissingMarkError, match="BTCUSD-PERP"):
        screener.tick_instrument("BTCUSDT-PERP", 490_000)
    book.instruments.set_mark("BTCUSD-PERP", 480_000)
    assert screener.tick_instrument("BTCUSDT-PERP", 490_000).size == 0
