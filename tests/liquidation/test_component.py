"""The liquidation engine component, through the engine: screen, confirm, stage, settle.

Worked numbers (BTCUSDT-PERP, Binance 2021 brackets, tests/margin/tables.py): alice holds
0.2 BTC long at 50,000 with a 1,000 USDT cross wallet. Maintenance is 0.4 % of notional, so
she is liquidated below ``1,000 + 0.2 (P − 50,000) = 0.0008 P``, P = 45,180.7, and bankrupt at
``1,000 / 0.2`` below her entry, 45,000 (margin-mechanics.md §1.3: ``BP = EP − IWB/qty``).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.engine import Engine
from fengkong.gate.events import OrderRequest
from fengkong.ledger.state import INSURANCE, LIQUIDATION
from fengkong.liquidation.events import (
    AutoDeleveraged,
    FundReason,
    InsuranceFundChanged,
    LiquidationConfigured,
    LiquidationDeferred,
    LiquidationFill,
    LiquidationOrder,
    LiquidationOrderDone,
    LiquidationOrdersCancelled,
    LiquidationTriggered,
    PartialLiquidation,
    PositionTakenOver,
    SocializedLoss,
    SpotMarginLiquidated,
)
from fengkong.liquidation.exact import account_breaches
from fengkong.margin.liquidation import Leg, bankruptcy_price, round_liquidation_price
from fengkong.margin.tiers import TierTable
from fengkong.market.events import (
    IndexConfigured,
    IndexConstituent,
    MarkConfigured,
    PerpetualFunding,
    SourcePrice,
)
from fengkong.model.enums import PositionSide
from fengkong.model.events import Rejected
from tests.factories import Log, exchange, gate_config, run
from tests.margin.tables import BTCUSDT_2021

SYMBOL = "BTCUSDT-PERP"
INDEX = "BTCUSDT-IX"
USDT = 10**8
PRICE = 10  # price units per USDT (tick 0.1)
LOT = 1000  # quantity units per BTC (lot 0.001)


def scene(
    accounts: dict[str, str],
    fills: list[tuple[str, str, str, str]],
    *,
    fund: str | None = None,
    **policy: object,
) -> Log:
    """Listed and gated BTCUSDT-PERP marked at 50,000 by one source; ``accounts`` funded
    (USDT); ``fills`` as (buyer, seller, price, qty); the liquidation ``policy``."""
    log = exchange(SYMBOL, accounts={a: {"USDT": amount} for a, amount in accounts.items()})
    log.make(
        IndexConfigured, index=INDEX, price_scale=1, constituents=[IndexConstituent("src", "1")],
        rule="cap", limit="0.5", stale_after_ms=60_000, min_sources=1,
    )  # fmt: skip
    mark(log, "50000")
    log.make(MarkConfigured, symbol=SYMBOL, index=INDEX, funding=PerpetualFunding())
    gate_config(log, SYMBOL)
    log.make(LiquidationConfigured, **policy)
    if fund is not None:
        log.deposit(INSURANCE, "USDT", fund)
    for buyer, seller, price, qty in fills:
        log.fill(SYMBOL, price, qty, buyer=buyer, seller=seller)
    return log


def mark(log: Log, price: str, *, age_ms: int = 0) -> None:
    log.make(SourcePrice, source="src", symbol=INDEX, price=price, time=log.ts + 1000 - age_ms)


def of(outputs: list, kind: type) -> list:
    return [o for o in outputs if isinstance(o, kind)]


def fund(engine: Engine) -> int:
    balance = engine.component("ledger").accounts[INSURANCE].balances.get("USDT")
    return 0 if balance is None else balance.total


ALICE = {"alice": "1000", "mm": "10000000"}
ALICE_LONG = [("alice", "mm", "50000", "0.2")]


def test_takeover_at_the_bankruptcy_price_of_the_margin_module_then_an_order_to_the_venue():
    log = scene(ALICE, ALICE_LONG)
    mark(log, "45100")
    engine, outputs = run(log.events)
    (triggered,) = of(outputs, LiquidationTriggered)
    assert (triggered.account, triggered.symbol, triggered.equity) == ("alice", None, 20 * USDT)
    (taken,) = of(outputs, PositionTakenOver)
    table = TierTable.parse(
        [dict(zip(("floor", "cap", "max_leverage", "mmr"), row, strict=True)) for row in
         BTCUSDT_2021], 8,
    )  # fmt: skip
    leg = Leg(side=1, size=Fraction(2, 10), entry=Fraction(10_000), tiers=table)
    exact = bankruptcy_price([leg], Fraction(1000))
    assert exact is not None and exact.price == 45_000
    tick = Fraction(1, 10)
    assert Fraction(taken.price, PRICE) == round_liquidation_price(exact.price, tick, 1)
    assert (taken.qty, taken.shortfall, taken.socialized) == (200, 0, 0)
    assert engine.component("ledger").accounts["alice"].balances["USDT"].total == 0
    (order,) = of(outputs, LiquidationOrder)
    assert (order.side, order.qty, order.reference_price) == ("sell", 200, 45_000 * PRICE)
    assert order.limit_price == 45_000 * PRICE  # an empty fund: no worse than the takeover
    liquidation = engine.component("liquidation")
    assert not liquidation.queue and list(liquidation.orders) == [order.order_id]


def test_the_venue_fill_better_than_the_takeover_pays_the_fund_and_done_closes_the_order():
    log = scene(ALICE, ALICE_LONG)
    mark(log, "45100")
    engine, outputs = run(log.events)
    (order,) = of(outputs, LiquidationOrder)
    fill = log.make(LiquidationFill, order_id=order.order_id, price="45500", qty="0.2",
                    counterparty="mm")  # fmt: skip
    done = log.make(LiquidationOrderDone, order_id=order.order_id)
    _, after = run([fill, done], engine)
    (gain,) = of(after, InsuranceFundChanged)
    assert (gain.reason, gain.amount, gain.balance) == (FundReason.CLEARING_GAIN, 100 * USDT,
                                                        100 * USDT)  # fmt: skip
    assert fund(engine) == 100 * USDT
    ledger = engine.component("ledger")
    assert not any(p.qty for p in ledger.accounts[LIQUIDATION].positions.values())
    assert not engine.component("liquidation").orders
    assert engine.component("liquidation").history[-1][2:] == ("clearing_gain", 100 * USDT,
                                                              100 * USDT)  # fmt: skip


def deleverage_scene():
    """alice (long 0.2 at 50,000 on a 1,000 USDT wallet) is liquidated at a mark of 45,100;
    bob is short 0.2 at 50,000 on 1,000 USDT. Returns the log, the engine and alice's
    liquidation order, sent to the venue and not yet done."""
    accounts = {"alice": "1000", "bob": "1000", "mm1": "10000000", "mm2": "10000000"}
    fills = [("alice", "mm1", "50000", "0.2"), ("mm2", "bob", "50000", "0.2")]
    log = scene(accounts, fills)
    mark(log, "45100")
    engine, outputs = run(log.events)
    (order,) = of(outputs, LiquidationOrder)
    return log, engine, order


def test_what_the_venue_cannot_fill_is_deleveraged_against_the_top_ranked_opposite_position():
    log, engine, order = deleverage_scene()
    _, after = run([log.make(LiquidationOrderDone, order_id=order.order_id)], engine)
    (adl,) = of(after, AutoDeleveraged)
    # bob (short, +980 on a 1,000 wallet) outranks mm1 (short, the same profit on 10 M)
    assert (adl.account, adl.qty, adl.price, adl.lights) == ("bob", 200, 45_000 * PRICE, 5)
    ledger = engine.component("ledger")
    assert (SYMBOL, PositionSide.BOTH) not in ledger.accounts["bob"].positions
    assert ledger.accounts["bob"].balances["USDT"].total == 2000 * USDT  # + 0.2 × 5,000
    assert not of(after, SocializedLoss) and not engine.component("liquidation").orders


def test_the_gate_sees_a_deleveraged_position_closed():
    """ADL closes positions at LiquidationOrderDone: the gate's cached cross aggregate of the
    deleveraged account must not outlive it (it counted bob's closed short's +1,000 UPNL on
    top of the wallet that now holds it: 2,529 USDT available instead of 2,000)."""
    log, engine, order = deleverage_scene()
    gate = engine.component("gate")
    gate.available_margin("bob", "USDT", log.ts)  # cached with bob's short open
    _, after = run([log.make(LiquidationOrderDone, order_id=order.order_id)], engine)
    assert of(after, AutoDeleveraged)
    assert gate.available_margin("bob", "USDT", log.ts) == 2000 * USDT  # the wallet, no position


def test_an_account_liquidated_from_the_queue_is_forgotten_by_the_gate():
    """A queued account is liquidated at a later price event that moves none of its marks (a
    quote of an unrelated index, which keeps the gate's other caches): the liquidation engine
    reports it, so the gate does not keep its cross aggregate of the positions taken over."""
    accounts = {"a": "1000", "b": "900", "c": "950", "mm": "10000000"}
    fills = [(x, "mm", "50000", "0.2") for x in ("a", "b", "c")]
    log = scene(accounts, fills, max_per_tick=1)
    log.make(
        IndexConfigured, index="OTHER-IX", price_scale=1,
        constituents=[IndexConstituent("src", "1")], rule="cap", limit="0.5",
        stale_after_ms=60_000, min_sources=1,
    )  # fmt: skip
    mark(log, "45150")
    engine, _ = run(log.events)
    gate = engine.component("gate")
    held = gate.available_margin("c", "USDT", log.ts)  # cached, c's long open (queued)
    quote = log.make(SourcePrice, source="src", symbol="OTHER-IX", price="1", time=log.ts)
    _, second = run([quote], engine)
    assert [t.account for t in of(second, PositionTakenOver)] == ["c"]
    after = gate.available_margin("c", "USDT", log.ts)
    gate._bump()  # a new epoch: computed afresh
    assert after == gate.available_margin("c", "USDT", log.ts) != held


def test_with_adl_off_the_remainder_is_resent_without_a_limit_and_its_loss_socialized():
    log = scene(ALICE, ALICE_LONG, adl=False)
    mark(log, "45100")
    engine, outputs = run(log.events)
    (order,) = of(outputs, LiquidationOrder)
    _, after = run([log.make(LiquidationOrderDone, order_id=order.order_id)], engine)
    (resent,) = of(after, LiquidationOrder)
    assert resent.limit_price is None and resent.qty == 200
    fill = log.make(LiquidationFill, order_id=resent.order_id, price="44000", qty="0.2",
                    counterparty="mm")  # fmt: skip
    totals = engine.component("ledger").asset_totals()
    _, filled = run([fill], engine)
    (loss,) = of(filled, SocializedLoss)
    assert (loss.asset, loss.amount) == ("USDT", 200 * USDT)  # 0.2 × (45,000 − 44,000)
    assert engine.component("ledger").asset_totals() == totals


def test_a_position_above_the_first_bracket_steps_down_instead_of_being_taken_over():
    # carol: 2 BTC long at 50,000 (bracket 1: MMR 0.5 %, cum 50) on 4,400 USDT. At 48,000:
    # equity 400 <= MM 430. Down to bracket 0 (notional <= 50,000: 1.041 BTC), the taker
    # fee 0.959 × 48,000 × 0.05 % = 23.016 leaves 376.984 > MM 199.872: a partial suffices.
    log = scene({"carol": "4400", "mm": "10000000"}, [("carol", "mm", "50000", "2")])
    mark(log, "48000")
    engine, outputs = run(log.events)
    (partial,) = of(outputs, PartialLiquidation)
    assert (partial.qty, partial.price, partial.from_bracket, partial.to_bracket) == (
        -959,
        48_000 * PRICE,
        1,
        0,
    )
    assert partial.fee == 23_016 * USDT // 1000
    assert not of(outputs, PositionTakenOver)
    ledger = engine.component("ledger")
    assert ledger.accounts["carol"].positions[(SYMBOL, PositionSide.BOTH)].qty == 1041
    liquidation = engine.component("liquidation")
    assert not account_breaches(ledger, "carol", liquidation.tables(), liquidation.marks)


def test_work_per_tick_is_bounded_and_the_worst_account_goes_first():
    accounts = {"a": "1000", "b": "900", "c": "950", "mm": "10000000"}
    fills = [(x, "mm", "50000", "0.2") for x in ("a", "b", "c")]
    log = scene(accounts, fills, max_per_tick=1)
    mark(log, "45150")  # equities: a 30, b −70, c −20 (USDT); all at or below MM 36.12
    engine, outputs = run(log.events)
    assert [t.account for t in of(outputs, PositionTakenOver)] == ["b"]
    (deferred,) = of(outputs, LiquidationDeferred)
    assert deferred.queued == 2
    liquidation = engine.component("liquidation")
    assert sorted(liquidation.queue) == ["a", "c"]
    mark(log, "45150")  # the next price event, same mark: the queue is worked on
    _, second = run(log.events[-1:], engine)
    assert [t.account for t in of(second, PositionTakenOver)] == ["c"]


def test_open_orders_are_cancelled_first_and_their_margin_released():
    log = scene(ALICE, ALICE_LONG)
    log.make(OrderRequest, action="new", order_id="o1", account="alice", symbol=SYMBOL,
             side="buy", qty="0.001", price="49000")  # fmt: skip
    mark(log, "45100")
    engine, outputs = run(log.events)
    (cancelled,) = of(outputs, LiquidationOrdersCancelled)
    assert cancelled.order_ids == ["o1"]
    assert not engine.component("gate").orders


def test_nothing_is_liquidated_on_a_stale_mark():
    log = scene(ALICE, ALICE_LONG)
    mark(log, "40000", age_ms=120_000)  # the source's quote is older than stale_after_ms
    engine, outputs = run(log.events)
    assert not of(outputs, LiquidationTriggered)
    assert engine.component("ledger").accounts["alice"].positions[(SYMBOL, PositionSide.BOTH)].qty
    mark(log, "40000")
    _, fresh = run(log.events[-1:], engine)
    assert of(fresh, PositionTakenOver)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("order_id", "nope", "not_applicable"),
        ("price", "44999.9", "invalid_parameter"),  # beyond the fund's limit (45,000)
        ("price", "45000.05", "invalid_number"),
        ("qty", "0.3", "close_exceeds_position"),
        ("counterparty", "sys:fees", "invalid_parameter"),
        ("counterparty", "ghost", "unknown_account"),
    ],
)
def test_a_bad_venue_fill_is_refused_and_changes_nothing(field, value, reason):
    log = scene(ALICE, ALICE_LONG)
    mark(log, "45100")
    engine, outputs = run(log.events)
    (order,) = of(outputs, LiquidationOrder)
    fields = {"order_id": order.order_id, "price": "45000", "qty": "0.2", "counterparty": "mm"}
    before = engine.state_hash()
    _, refused = run([log.make(LiquidationFill, **{**fields, field: value})], engine)
    (rejected,) = of(refused, Rejected)
    assert rejected.reason == reason
    assert engine.state_hash() == before


def test_snapshot_mid_liquidation_then_restore_gives_the_uninterrupted_result():
    accounts = {"alice": "1000", "bob": "1000", "mm1": "10000000", "mm2": "10000000"}
    log = scene(accounts, [("alice", "mm1", "50000", "0.2"), ("mm2", "bob", "50000", "0.2")])
    mark(log, "45100")
    engine, outputs = run(log.events)
    (order,) = of(outputs, LiquidationOrder)
    rest = [
        log.make(LiquidationFill, order_id=order.order_id, price="45000", qty="0.1",
                 counterparty="mm2"),
        log.make(LiquidationOrderDone, order_id=order.order_id),
    ]  # fmt: skip
    mark(log, "44000")
    rest.append(log.events[-1])
    restored = Engine.restore(engine.snapshot())
    _, a = run(rest, engine)
    _, b = run(rest, restored)
    assert a == b and engine.state_hash() == restored.state_hash()


def test_a_spot_margin_account_below_the_liquidation_level_is_liquidated_on_the_mark():
    """§3: bob holds 1.5 BTC against 30,000.3 USDT owed (tests/liquidation/
    test_spot_liquidation.py); at 22,000 his level is 33,000 / 30,000.3 < 1.1: the fund buys
    just enough BTC at the mark to restore the call level 1.3, the fee to the fund."""
    from fengkong.ledger.loans import Borrow, LoanRepaid, SpotLiquidationTrade
    from tests.ledger.test_loans import at, margin_log, quote

    log = margin_log(usdt_rate="0.00024", bob={"BTC": "1"}, mm={"BTC": "10"})
    quote(log, at(10))
    log.make(Borrow, ts=at(10), account="bob", asset="USDT", amount="30000")
    log.fill("BTCUSDT", "60000", "0.5", buyer="bob", seller="mm")
    log.deposit(INSURANCE, "USDT", "100000")
    engine, _ = run(log.events)
    totals = engine.component("ledger").asset_totals()
    quote(log, at(10, 5), "22000")
    _, after = run(log.events[-3:], engine)
    (done,) = of(after, SpotMarginLiquidated)
    assert done.account == "bob" and done.complete
    assert Fraction(done.level_before) <= Fraction(11, 10) < Fraction(13, 10)
    assert Fraction(13, 10) < Fraction(done.level_after) < Fraction(13, 10) + Fraction(1, 10**6)
    (trade,) = of(after, SpotLiquidationTrade)
    assert (trade.sold_asset, trade.bought_asset) == ("BTC", "USDT")
    assert sum(r.interest + r.principal for r in of(after, LoanRepaid)) == trade.bought - trade.fee
    changes = {(c.asset, c.reason): c.amount for c in of(after, InsuranceFundChanged)}
    assert changes[("USDT", FundReason.CLEARANCE_FEE)] == trade.fee
    assert changes[("BTC", FundReason.SPOT_LIQUIDATION)] == trade.sold
    assert changes[("USDT", FundReason.SPOT_LIQUIDATION)] == -trade.bought
    assert engine.component("ledger").asset_totals() == totals


def test_every_position_carries_its_adl_light_ranked_per_side():
    """Five shorts with rising leverage on equal profit: the lights run 1 to 5 (the top 20 %
    of the side is 5, first to be deleveraged); the one long is alone on its side: 5."""
    wallets = {"s1": "50000", "s2": "20000", "s3": "8000", "s4": "4000", "s5": "2000"}
    log = scene({**wallets, "mm": "100000000"}, [("mm", s, "50000", "0.2") for s in wallets])
    mark(log, "49000")
    engine, _ = run(log.events)
    lights = engine.component("liquidation").adl_lights(SYMBOL)
    assert [lights[(s, PositionSide.BOTH)] for s in wallets] == [1, 2, 3, 4, 5]
    assert lights[("mm", PositionSide.BOTH)] == 5


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("mark"), st.integers(43_000, 52_000)),
            st.tuples(st.just("fill"), st.integers(0, 3), st.integers(0, 3),
                      st.integers(1, 200), st.integers(-300, 300)),
        ),
        min_size=4, max_size=30,
    ),
    cut=st.integers(0, 40),
    budget=st.sampled_from([1, 2, 1000]),
)  # fmt: skip
def test_fills_and_marks_keep_the_queue_invariant_and_a_restore_changes_nothing(steps, cut, budget):
    """Random fills between four accounts and random mark moves: after every mark, each
    account below maintenance (exact check) is queued; conservation holds; a snapshot taken
    anywhere and restored ends in the uninterrupted run's state."""
    names = ["w0", "w1", "w2", "w3"]
    log = scene({**dict.fromkeys(names, "300"), "mm": "100000000"}, [], max_per_tick=budget)
    start = len(log.events)
    price = 50_000
    for step in steps:
        if step[0] == "mark":
            price = step[1]
            mark(log, str(price))
        else:
            _, a, b, lots, offset = step
            buyer, seller = (names[a], "mm") if a != b else ("mm", names[b])
            log.fill(SYMBOL, str(price + offset), f"{lots / 1000:.3f}", buyer=buyer, seller=seller)
    engine = Engine()
    ledger = engine.component("ledger")
    liquidation = engine.component("liquidation")
    totals = None
    for k, event in enumerate(log.events):
        engine.process(event)
        if k == start:
            totals = ledger.asset_totals()
        if k > start and isinstance(event, SourcePrice):
            tables = liquidation.tables()
            below = [a for a in names if account_breaches(ledger, a, tables, liquidation.marks)]
            assert set(below) <= set(liquidation.queue)
    assert ledger.asset_totals() == totals
    split = min(start + cut, len(log.events))
    first = Engine()
    for event in log.events[:split]:
        first.process(event)
    resumed = Engine.restore(first.snapshot())
    for event in log.events[split:]:
        resumed.process(event)
    assert resumed.state_hash() == engine.state_hash()
