"""The fill fast path (``Ledger._on_fill``) against the reference path (``_fill_checked``),
and the contract arithmetic it inlines against exact fractions.

``_on_fill`` takes the common fill (a trading linear or inverse future or perpetual, two known
one-way accounts, no gated orders) straight through; everything else goes to ``_fill_checked``.
Both must give the same outputs (refusals with the same reason, field, value and message), the
same state hash and the same open interest on every log: here random logs of valid and invalid
fills, funding, transfers, isolated margin, hedge legs, parameter changes (tick, lot, halts)
and expiries, fed to a ledger with the fast path and to one without it.
"""

from __future__ import annotations

import random
from fractions import Fraction
from math import ceil, floor

from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.engine import Engine
from fengkong.ledger.contracts import ContractMath
from fengkong.ledger.ledger import Ledger
from fengkong.model.events import Fill, InstrumentParamsChanged, MarginTransfer, Rejected
from tests.conftest import IN_CI
from tests.engine.test_properties import KINDS, actions, setup_log
from tests.factories import EXPIRY, busy_log

EXAMPLES = 1000 if IN_CI else 150

PARAMS = [
    dict(symbol="BTCUSDT-PERP", tick_size="0.5"),
    dict(symbol="BTCUSDT-PERP", tick_size="0.1"),
    dict(symbol="BTCUSDT-PERP", lot_size="0.01"),
    dict(symbol="BTCUSDT-PERP", lot_size="0.001"),
    dict(symbol="BTCUSD-PERP", status="halted"),
    dict(symbol="BTCUSD-PERP", status="trading"),
]


def reference_engine() -> Engine:
    """A core engine whose ledger takes every fill through ``_fill_checked``."""
    ledger = Ledger()
    ledger._on_fill = ledger._fill_checked  # type: ignore[method-assign]
    return Engine([ledger])


def same_run(events: list) -> None:
    fast, reference = Engine([Ledger()]), reference_engine()
    for event in events:
        assert fast.process(event) == reference.process(event), event
    assert fast.state_hash() == reference.state_hash()
    fast_oi = {s: n for s, n in fast.component("ledger").open_interest.items() if n}
    reference_oi = {s: n for s, n in reference.component("ledger").open_interest.items() if n}
    assert fast_oi == reference_oi


steps = st.lists(
    st.one_of(
        actions(),
        actions(),
        actions(),
        st.sampled_from(PARAMS).map(lambda fields: ("params", fields)),
    ),
    max_size=60,
)


@settings(max_examples=EXAMPLES)
@given(steps=steps, settle=st.booleans())
def test_fast_fill_path_matches_the_reference_path_on_random_logs(steps, settle) -> None:
    log = setup_log()
    for kind, fields in steps:
        if kind == "fill":
            log.fill(**fields)
        elif kind == "params":
            log.make(InstrumentParamsChanged, **fields)
        else:
            log.make(KINDS[kind], **fields)
    if settle:
        from fengkong.model.events import Settlement

        log.make(Settlement, symbol="ETHUSDT-260327", price="3111.11", ts=EXPIRY)
    same_run(log.events)


def test_fast_fill_path_matches_the_reference_path_on_the_benchmark_log() -> None:
    """Opens, partial closes, flips, full closes, rebates and funding on 1,000 accounts."""
    same_run(busy_log(20_000, accounts=50))


def test_fast_fill_path_refuses_what_the_reference_refuses() -> None:
    log = setup_log()
    bad = [
        dict(price="60000.05"),  # off tick
        dict(qty="0.0005"),  # off lot
        dict(price="0"),
        dict(qty="-1"),
        dict(price="1e3"),
        dict(maker_fee_rate="-0.001"),  # rebate above the taker fee
        dict(taker_fee_rate="0.2"),  # beyond 10 %
        dict(buyer="ghost"),
        dict(seller="ghost"),
        dict(seller="a"),  # self trade
        dict(buyer="h"),  # hedge account with side "both"
        dict(seller="h"),
        dict(qty="9000"),  # a taker fee above the buyer's wallet
        dict(qty="9000", taker_side="sell"),  # ... above the seller's
        dict(buyer="iso", price="70000"),  # iso's short closed at a loss beyond its margin
        dict(seller="iso", price="50000", buyer="b"),  # ... and iso's long
    ]
    base = dict(
        symbol="BTCUSDT-PERP",
        price="60000",
        qty="0.5",
        buyer="a",
        seller="b",
        taker_side="buy",
        maker_fee_rate="0.0002",
        taker_fee_rate="0.0004",
    )
    log.make(MarginTransfer, account="iso", symbol="BTCUSDT-PERP", amount="100")
    log.fill(**{**base, "seller": "iso", "qty": "0.1"})  # iso: short 0.1
    log.fill(**{**base, "buyer": "iso", "seller": "a", "qty": "0.05", "price": "59000"})
    log.fill(**{**base, "buyer": "iso", "seller": "a", "qty": "0.15", "price": "59500"})  # flip
    log.fill(**{**base, "seller": "iso", "qty": "0.1", "price": "60500"})  # flat, margin back
    log.fill(**{**base, "seller": "iso", "qty": "0.1"})  # short 0.1
    for fields in bad[:-1]:
        log.fill(**{**base, **fields})
    log.fill(**{**base, "buyer": "iso", "qty": "0.2"})  # long 0.1
    log.fill(**{**base, **bad[-1]})
    log.fill(**base)
    fast = Engine([Ledger()])
    outputs = [fast.process(e) for e in log.events]
    refused = [o[0] for o in outputs[-len(bad) - 2 : -3] + outputs[-2:-1]]
    assert all(isinstance(o, Rejected) for o in refused), refused
    assert outputs[-3] == [] and outputs[-1] == []
    same_run(log.events)


# --- the arithmetic the fast path inlines, against exact fractions -----------------------


def maths() -> list[ContractMath]:
    ledger = Ledger()
    engine = Engine([ledger])
    for event in setup_log().events:
        engine.process(event)
    return [ledger.contract_math(s) for s in ("BTCUSDT-PERP", "BTCUSD-PERP", "ETHUSDT-260327")]


def exact_value(math: ContractMath, qty: int, price: int) -> Fraction:
    """Value of ``qty`` contracts at ``price`` at ``value_scale``, exact."""
    if math.inverse:
        return Fraction(qty * math.open_num, price * math.open_den)
    return Fraction(qty * math.open_num * price)


def exact_reduce(
    math: ContractMath, qty: int, entry_value: int, signed_qty: int, price: int
) -> tuple[int, int]:
    held, size = abs(qty), abs(signed_qty)
    closed = min(size, held)
    share = Fraction(entry_value * closed, held)
    long = qty > 0
    if math.inverse:
        removed = floor(share)  # against the holder, both sides
        exit_value = exact_value(math, closed, price)
        exit_units = ceil(exit_value) if long else floor(exit_value)
        pnl_value = removed - exit_units if long else removed + exit_units
    else:
        removed = ceil(share)
        exit_units = int(exact_value(math, closed, price))
        pnl_value = exit_units - removed if long else -exit_units - removed
    pnl = floor(Fraction(pnl_value) * Fraction(10) ** (math.settle_scale - math.value_scale))
    if size > held:
        return floor(exact_value(math, qty + signed_qty, price)), pnl
    return entry_value - removed, pnl


def test_reduce_and_fee_match_exact_fractions() -> None:
    rng = random.Random(11)
    for math in maths():
        for _ in range(3000):
            price = rng.randint(1, 10**9)
            qty = rng.choice([-1, 1]) * rng.randint(1, 10**6)
            entry_value = floor(exact_value(math, qty, rng.randint(1, 10**9)))
            signed = -(1 if qty > 0 else -1) * rng.randint(1, 2 * abs(qty))
            assert math.reduce(qty, entry_value, signed, price) == exact_reduce(
                math, qty, entry_value, signed, price
            )
            rate = rng.randint(-(10**6), 10**6)
            size = abs(signed)
            notional = exact_value(math, size, price) * rate
            fee = math.fee(size, price, rate)
            exact = notional * Fraction(10) ** (math.settle_scale - math.value_scale - 8)
            assert fee == ceil(exact)  # charged up, a rebate paid down
            if rate > 0:
                assert fee == math.charge(size, price, rate)
            elif rate < 0:
                assert fee == -math.payout(size, price, -rate)


def test_fill_of_a_gated_order_or_a_hedge_leg_takes_the_reference_path() -> None:
    ledger = Ledger()
    calls = []
    checked = ledger._fill_checked

    def spy(event: Fill) -> list:
        calls.append(event.id)
        return checked(event)

    ledger._fill_checked = spy  # type: ignore[method-assign]
    engine = Engine([ledger])
    log = setup_log()
    base = dict(symbol="BTCUSDT-PERP", price="60000", qty="0.5", buyer="a", seller="b")
    plain = log.fill(**base)
    hedged = log.fill(**{**base, "buyer": "h"}, buyer_position_side="long")
    spot = log.fill(**{**base, "symbol": "BTCUSDT", "qty": "0.01"})
    for event in log.events:
        engine.process(event)
    assert plain.id not in calls
    assert hedged.id in calls and spot.id in calls


def test_a_position_side_that_is_no_side_is_refused_not_a_crash() -> None:
    """An event built in-process (no decoder to check the enum) naming a side that does not
    exist: refused as a mismatch before anything changes, for either party."""
    log = setup_log()
    base = dict(symbol="BTCUSDT-PERP", price="60000", qty="0.5", buyer="a", seller="h")
    log.fill(**{**base, "buyer": "h", "seller": "a"}, buyer_position_side="sideways")
    log.fill(**base, seller_position_side="sideways")
    for make in (lambda: Engine([Ledger()]), reference_engine):
        engine = make()
        for event in log.events[:-2]:
            engine.process(event)
        before = engine.state_hash()
        for event, field in zip(
            log.events[-2:], ("buyer_position_side", "seller_position_side"), strict=True
        ):
            (refused,) = engine.process(event)
            assert isinstance(refused, Rejected)
            assert (refused.reason, refused.field) == ("position_side_mismatch", field)
        assert engine.state_hash() == before


def test_fast_fill_path_matches_on_contracts_with_multipliers() -> None:
    """Linear and inverse perpetuals whose multiplier is not 1 (and not a power of ten), so
    that no constant of the fee and entry-value formulas is 1: random fills, both paths."""
    from fengkong.model.events import InstrumentListed
    from tests.factories import LISTINGS

    log = setup_log()
    log.make(InstrumentListed, symbol="X-LIN", **{**LISTINGS["BTCUSDT-PERP"], "multiplier": "2.5"})
    log.make(InstrumentListed, symbol="X-INV", **{**LISTINGS["BTCUSD-PERP"], "multiplier": "7"})
    rng = random.Random(5)
    for _ in range(3000):
        linear = rng.random() < 0.5
        buyer, seller = rng.sample(["a", "b", "iso", "sys:insurance"], 2)
        log.fill(
            "X-LIN" if linear else "X-INV",
            f"{rng.randint(40_000, 80_000)}.{rng.randint(0, 9)}",
            f"{rng.randint(1, 3000) / 1000:g}" if linear else str(rng.randint(1, 900)),
            buyer=buyer,
            seller=seller,
            taker_side=rng.choice(["buy", "sell"]),
            maker_fee_rate=rng.choice(["0.0002", "-0.0001", "0"]),
            taker_fee_rate=rng.choice(["0.0004", "0.00075"]),
        )
    same_run(log.events)
