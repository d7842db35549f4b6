"""The columnar position book mirrors the ledger, built at once or kept in step event by event."""

from __future__ import annotations

import random

import numpy as np

from fengkong.engine import Engine
from fengkong.liquidation.book import LEG_CODES, PositionBook, mirror32
from fengkong.model.enums import MarginMode, PositionSide
from fengkong.model.events import Fill, MarginTransfer, SetMarginMode
from tests.factories import exchange
from tests.margin.tables import btcusdt_2021, coin_table

TABLES = {"BTCUSDT-PERP": btcusdt_2021(), "BTCUSD-PERP": coin_table()}
SYMBOLS = ("BTCUSDT-PERP", "BTCUSD-PERP")


def mirror(book: PositionBook) -> dict[tuple[str, str, int], tuple[float, float, float, bool]]:
    """Every live position of the book keyed by (account, symbol, leg)."""
    out = {}
    for a, account_id in enumerate(book.account_ids):
        for slot in book.slots_of(a):
            key = (account_id, book.instruments.symbols[book.inst[slot]], int(book.leg[slot]))
            assert key not in out, f"duplicate position {key}"
            out[key] = (
                float(book.size[slot]),
                float(book.entry[slot]),
                float(book.margin[slot]),
                bool(book.isolated[slot]),
            )
    return out


def wallets(book: PositionBook) -> dict[str, list[float]]:
    return {a: book.wallet[i].tolist() for i, a in enumerate(book.account_ids)}


def assert_holder_index_consistent(book: PositionBook) -> None:
    """Holder lists, per-instrument leg lists and the float32 screening copies all agree with
    the arena."""
    for i in range(len(book.instruments)):
        holders = book.holder_accounts(i).tolist()
        assert len(holders) == len(set(holders)), "an account is listed twice as a holder"
        held = {a for a in range(book.accounts) for s in book.slots_of(a) if book.inst[s] == i}
        assert set(holders) == held
        legs = book.legs(i)
        slots = [s for a in range(book.accounts) for s in book.slots_of(a) if book.inst[s] == i]
        assert legs.n == len(slots), "one leg entry per position"
        seen = set()
        for slot in slots:
            a = next(a for a in held if slot in book.slots_of(a))
            assert holders[book.hpos[slot]] == a
            j = int(book.ipos[slot])
            assert j not in seen and 0 <= j < legs.n
            seen.add(j)
            assert (legs.acct[j], legs.leg[j]) == (a, book.leg[slot])
            sign = book.instruments.sign[i]
            expected = mirror32([sign * book.size[slot], sign * book.entry[slot],
                                 book.margin[slot]])  # fmt: skip
            copies = (book.fsize[slot], book.fentry[slot], book.fmargin[slot])
            np.testing.assert_array_equal(copies, expected)
            np.testing.assert_array_equal((legs.fsize[j], legs.fentry[j], legs.fmargin[j]), copies)
            assert legs.isolated[j] == book.isolated[slot]
            siblings = sum(book.inst[o] == i for o in book.slots_of(a))
            assert legs.shared[j] == (siblings > 1)
            assert book.code[slot] == (-i - 1 if book.isolated[slot] else i)


def test_mirror32_is_nan_where_float32_cannot_hold_a_value_to_its_precision() -> None:
    got = mirror32([0.0, 1.5, -2.5e29, 3e30, 1e-31, -1e-29, np.inf, np.nan])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got[:3], np.float32([0.0, 1.5, -2.5e29]))
    assert np.isnan(got[3:5]).all() and got[5] == np.float32(-1e-29) and np.isnan(got[6:]).all()


def test_change_log_lists_touched_accounts_and_a_bulk_load_resets_it() -> None:
    book = PositionBook()
    book.add_instrument(_instrument("S0"), 8, btcusdt_2021().tiers)
    base = book.changes_base
    book.apply_position("u", "S0", 1000, 5_000_000)
    book.set_wallet("v", "USDT", 10**8)
    book.set_wallet("w", "BTC", 10**8)  # no screened instrument settles in BTC: no change
    assert book.changes == [0, 1] and book.changes_base == base


def test_from_ledger_converts_exact_units_to_natural_floats() -> None:
    log = exchange(*SYMBOLS, accounts={"alice": {"USDT": "1000", "BTC": "1"}, "bob": {}})
    log.fill("BTCUSDT-PERP", "50000", "0.02", buyer="alice", seller="bob")
    log.fill("BTCUSD-PERP", "40000", "30", buyer="bob", seller="alice")
    engine = Engine()
    for event in log.events:
        engine.process(event)
    book = PositionBook.from_ledger(engine.component("ledger"), TABLES)
    positions = mirror(book)
    assert positions[("alice", "BTCUSDT-PERP", 0)] == (0.02, 1000.0, 0.0, False)
    assert positions[("bob", "BTCUSDT-PERP", 0)] == (-0.02, -1000.0, 0.0, False)
    # inverse: 30 contracts x 100 USD face; entry value 3000 / 40000 = 0.075 BTC
    assert positions[("alice", "BTCUSD-PERP", 0)] == (-3000.0, -0.075, 0.0, False)
    assets = book.instruments.asset_index
    assert book.wallet[book.account_index["alice"], assets["USDT"]] == 1000.0
    assert book.wallet[book.account_index["alice"], assets["BTC"]] == 1.0
    assert "sys:settlement" not in book.account_index
    assert_holder_index_consistent(book)


def random_log(seed: int, fills: int, usdt: str = "10000000", btc: str = "1000"):
    """Fills among one-way, hedge and isolated accounts on a linear and an inverse perpetual
    (opens, closes, flips, refused over-closes), margin transfers to isolated positions."""
    rng = random.Random(seed)
    names = [f"a{i}" for i in range(8)]
    log = exchange(*SYMBOLS)
    for i, name in enumerate(names):
        log.account(name, "hedge" if i % 3 == 2 else "one_way")
        log.deposit(name, "USDT", usdt)
        log.deposit(name, "BTC", btc)
    for name in names[:4]:
        log.make(SetMarginMode, account=name, symbol="BTCUSD-PERP", mode="isolated")
    for _ in range(fills):
        buyer, seller = rng.sample(names, 2)
        sides = {}
        for role, name in (("buyer", buyer), ("seller", seller)):
            if int(name[1:]) % 3 == 2:
                sides[f"{role}_position_side"] = rng.choice(["long", "short"])
        if rng.random() < 0.5:
            qty = f"0.{rng.randint(1, 40):03d}"
            log.fill("BTCUSDT-PERP", str(rng.randint(45000, 55000)), qty,
                     buyer=buyer, seller=seller, **sides)  # fmt: skip
        else:
            log.fill("BTCUSD-PERP", str(rng.randint(45000, 55000)), str(rng.randint(1, 40)),
                     buyer=buyer, seller=seller, **sides)  # fmt: skip
        if rng.random() < 0.1:
            log.make(MarginTransfer, account=rng.choice(names[:4]), symbol="BTCUSD-PERP",
                     amount="0.01")  # fmt: skip
    return log.events


def test_book_kept_in_step_event_by_event_equals_a_fresh_build() -> None:
    events = random_log(seed=11, fills=600)
    engine = Engine()
    ledger = engine.component("ledger")
    book = None
    for n, event in enumerate(events):
        engine.process(event)
        if isinstance(event, Fill):
            if book is None:
                book = PositionBook.from_ledger(ledger, TABLES)
            book.sync_account(ledger, event.buyer)
            book.sync_account(ledger, event.seller)
        elif isinstance(event, MarginTransfer) and book is not None:
            book.sync_account(ledger, event.account)
        if book is not None and n % 97 == 0:
            fresh = PositionBook.from_ledger(ledger, TABLES)
            assert mirror(book) == mirror(fresh)
            assert_holder_index_consistent(book)
    fresh = PositionBook.from_ledger(ledger, TABLES)
    assert mirror(book) == mirror(fresh)
    assert wallets(book) == wallets(fresh)
    assert_holder_index_consistent(book)
    legs = {key[2] for key in mirror(book)}
    assert legs == {0, 1, 2}, "the log exercises one-way and both hedge legs"
    assert any(v[3] for v in mirror(book).values()), "and isolated positions"


def _instrument(symbol: str):
    from fengkong.model.enums import InstrumentKind, InstrumentStatus
    from fengkong.model.instruments import Instrument

    return Instrument(symbol=symbol, kind=InstrumentKind.LINEAR_PERPETUAL, base=symbol,
                      quote="USDT", settle="USDT", price_scale=2, qty_scale=3, multiplier=1,
                      multiplier_scale=0, tick_size=1, lot_size=1, min_qty=1, max_qty=10**9,
                      min_notional=0, status=InstrumentStatus.TRADING)  # fmt: skip


def test_growth_relocation_removal_and_compaction_keep_every_position() -> None:
    book = PositionBook()
    for k in range(12):
        book.add_instrument(_instrument(f"S{k}"), 8, btcusdt_2021().tiers)
    rng = np.random.default_rng(5)
    expected: dict[tuple[str, str, int], tuple[float, float, float, bool]] = {}
    for _ in range(3000):
        account = f"u{rng.integers(40)}"
        symbol = f"S{rng.integers(12)}"
        side = [PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT][rng.integers(3)]
        qty = int(rng.integers(-3, 4)) * 1000
        iso = rng.random() < 0.3
        book.apply_position(account, symbol, qty, qty * 5000, side=side,
                            margin_mode=MarginMode.ISOLATED if iso else MarginMode.CROSS,
                            isolated_margin=abs(qty) * 7 if iso else 0)  # fmt: skip
        key = (account, symbol, LEG_CODES[side])
        if qty:
            margin = abs(qty) * 7 / 10**8 if iso else 0.0
            expected[key] = (qty / 1000, qty * 5000 / 10**5, margin, iso)
        else:
            expected.pop(key, None)
    assert book.holes > 0, "blocks moved to the arena's end as accounts grew"
    assert mirror(book) == expected
    assert_holder_index_consistent(book)
    book.compact()
    assert book.holes == 0 and book.top == int(book.capacity[: book.accounts].sum())
    assert mirror(book) == expected
    assert_holder_index_consistent(book)
