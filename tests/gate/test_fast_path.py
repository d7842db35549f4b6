"""The new-order fast path (``Gate._on_request`` over a per-(account, instrument) context)
against the general path (``Gate._decide``).

The fast path accepts a new derivative order when its pair's context and the live books
plainly pass every check, and hands everything else to ``_decide``. The reference decides
every request on the general path with nothing cached. Both must give the same
outputs (acceptances with the same reservation, refusals with the same reason, field, value
and message) and the same state hash on every log: here random logs of new, replace and
cancel requests (valid and malformed: sides, types, times in force, position sides, texts,
duplicate ids, reduce-only, spot-margin), completions, fills naming gated orders, index moves,
time jumps past the index's staleness, leverage, trading states, gate and instrument settings,
listing parameters, deposits and withdrawals, fed to an engine with the fast path and to one
without it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.engine import Engine
from fengkong.gate import Gate
from fengkong.gate.events import (
    GateConfigured,
    OrderAccepted,
    OrderDone,
    OrderRequest,
    SetLeverage,
    SetTradingState,
)
from fengkong.ledger.ledger import Ledger
from fengkong.liquidation.component import LiquidationComponent
from fengkong.market.component import MarketComponent
from fengkong.market.events import SourcePrice
from fengkong.model.events import Deposit, InstrumentParamsChanged, Withdrawal, event_types
from fengkong.rules.component import RulesComponent
from tests.conftest import IN_CI
from tests.factories import STALE_AFTER_MS, Log, gate_config, gated_engine, order, priced, run

EXAMPLES = 1000 if IN_CI else 200

PERP, INVERSE, FUTURE, SPOT = "BTCUSDT-PERP", "BTCUSD-PERP", "ETHUSDT-260327", "BTCUSDT"
PRICES = {PERP: 50_000, INVERSE: 50_000, FUTURE: 3_000, SPOT: 50_000}
QTYS = {
    PERP: ["0.001", "0.005", "0.25", "2", "0.002", "0.0015", "1001", "abc"],
    INVERSE: ["1", "10", "500", "25", "20", "0.5", "2000000", "3"],
    FUTURE: ["0.01", "0.5", "20", "0.2", "0.015"],
    SPOT: ["0.001", "0.05", "0.000001"],
}
ACCOUNTS = ["alice", "bob", "carol"]  # one-way cross, hedge mode, isolated on PERP


class GeneralGate(Gate):
    """The gate with every request on the general path and nothing cached: each request
    starts a new epoch, so its cross aggregate is computed afresh (the caches, like the fast
    path, must never change an answer)."""

    def handlers(self) -> dict[type, Any]:
        return {**super().handlers(), OrderRequest: self._decide_afresh}

    def _decide_afresh(self, event: OrderRequest) -> list:
        self._bump()
        return self._decide(event)


def reference_engine() -> Engine:
    """The default engine's components, its gate a :class:`GeneralGate`."""
    ledger = Ledger()
    market = MarketComponent(ledger)
    gate = GeneralGate(ledger, market)
    return Engine([ledger, market, gate, LiquidationComponent(ledger, market, gate),
                   RulesComponent()])  # fmt: skip


def setup_log() -> Log:
    log = Log()
    log.assets()
    for symbol in PRICES:
        log.listing(symbol)
    modes = {"alice": "one_way", "bob": "hedge", "carol": "one_way", "mm": "one_way"}
    for account, mode in modes.items():
        log.account(account, mode)
        for asset, amount in (("USDT", "200000"), ("BTC", "3"), ("ETH", "30")):
            log.deposit(account, asset, "1000000" if account == "mm" else amount)
    log.isolated("carol", PERP)
    for symbol, price in PRICES.items():
        priced(log, symbol, str(price))
        gate_config(log, symbol)
    log.make(GateConfigured, max_open_orders=6, rate_capacity=8, rate_per_second=1)
    return log


def requests():
    """A new, replace or cancel request: mostly well-formed (the fast path's work), with
    malformed sides, types, times in force, position sides and texts among them."""
    return st.fixed_dictionaries(
        {
            "action": st.sampled_from(["new"] * 16 + ["replace", "replace", "cancel"]),
            "account": st.sampled_from(["alice"] * 12 + ["bob"] * 4 + ["carol", "nobody"]),
            "symbol": st.sampled_from([PERP] * 12 + [INVERSE] * 3 + [FUTURE, SPOT, "NOPE"]),
            "side": st.sampled_from(["buy", "sell"] * 10 + ["hold"]),
            "kind": st.sampled_from(["limit"] * 15 + ["market"] * 4 + ["stop"]),
            "tif": st.sampled_from([None] * 20 + ["gtc", "ioc", "fok", "post_only", "day"]),
            "leg": st.sampled_from([None] * 20 + ["both", "long", "short", "up"]),
            "qty": st.integers(0, 7),
            "offset": st.sampled_from([0, 0.1, -0.1, 1, -1, 3, -3, 0.05, 6, -6, 40, None]),
            "reduce_only": st.sampled_from([False] * 9 + [True]),
            "margin": st.sampled_from([False] * 19 + [True]),
            "order": st.integers(0, 12),
            "edge": st.sampled_from([None] * 3 + [(1, 0), (1, 1), (-1, 0), (-1, 1)]),
        }
    )


def admin():
    """Settings, trading states, listing parameters and money moves."""
    params = [
        {"tick_size": "0.5"},
        {"tick_size": "0.1"},
        {"lot_size": "0.01"},
        {"lot_size": "0.001"},
        {"status": "halted"},
        {"status": "trading"},
        {"min_notional": "100"},
        {"min_notional": "0"},
    ]
    states = ["active"] * 3 + ["reduce_only", "cancel_only", "halted"]
    return st.one_of(
        st.tuples(st.just("leverage"), st.sampled_from(ACCOUNTS), st.sampled_from([1, 5, 125])),
        st.tuples(
            st.just("state"),
            st.sampled_from(["platform", "instrument", "account"]),
            st.sampled_from(states),
        ),
        st.tuples(st.just("gate"), st.integers(1, 8), st.integers(1, 10)),
        st.tuples(
            st.just("limits"),
            st.sampled_from([None, "0.3", "1"]),
            st.sampled_from([None, "0.5", "3"]),
            st.sampled_from([None, "20000"]),
        ),
        st.tuples(st.just("params"), st.sampled_from(params)),
        st.tuples(
            st.just("money"),
            st.sampled_from(ACCOUNTS),
            st.sampled_from(["USDT", "BTC"]),
            st.sampled_from(["100", "50000", "-100", "-50000"]),
        ),
    )


steps = st.lists(
    st.one_of(
        requests().map(lambda fields: ("request", fields)),
        requests().map(lambda fields: ("request", fields)),
        requests().map(lambda fields: ("request", fields)),
        requests().map(lambda fields: ("request", fields)),
        requests().map(lambda fields: ("request", fields)),
        requests().map(lambda fields: ("request", fields)),
        st.tuples(st.just("done"), st.integers(0, 12)),
        st.tuples(st.just("fill"), st.integers(0, 12), st.booleans()),
        st.tuples(
            st.just("quote"),
            st.sampled_from(list(PRICES)),
            st.sampled_from(["src0", "src1", "src2"]),
            st.integers(-600, 600),
        ),
        st.tuples(st.just("wait"), st.sampled_from([1, 1000, STALE_AFTER_MS, 2 * STALE_AFTER_MS])),
        admin().map(tuple),  # one branch (a plain one_of would be flattened into six)
        admin().map(tuple),
    ),
    min_size=10,
    max_size=60,
)


class Driver:
    """Builds the next event of a step from the reference engine's state (both engines hold
    the same state as long as they agree, which is what the test checks)."""

    def __init__(self, log: Log, engine: Engine) -> None:
        self.log = log
        self.gate = engine.component("gate")
        self.ledger = engine.component("ledger")
        self.market = engine.component("market")
        self.count = 0

    def open_order(self, pick: int):
        ids = sorted(self.gate.orders)
        return self.gate.orders[ids[pick % len(ids)]] if ids else None

    def event(self, step: tuple):
        log, kind = self.log, step[0]
        self.count += 1
        if kind == "request":
            return self.request(step[1])
        if kind == "done":
            gated = self.open_order(step[1])
            order_id = gated.order_id if gated else "missing"
            return log.make(OrderDone, order_id=order_id, reason="cancelled")
        if kind == "fill":
            return self.fill(step[1], step[2])
        if kind == "quote":  # a source quote moves the index and the mark (and keeps it fresh)
            _, symbol, source, move = step
            price = PRICES[symbol] * (10_000 + move) / 10_000
            return log.make(SourcePrice, source=source, symbol=f"{symbol}-IX",
                            price=f"{price:.2f}", time=log.ts)  # fmt: skip
        if kind == "wait":  # event time moves on: past STALE_AFTER_MS the indexes age out
            log.ts += step[1]
            return log.make(Deposit, account="mm", asset="USD", amount="1")
        return self.admin(step)

    def request(self, fields: dict):
        symbol = fields["symbol"]
        base = PRICES.get(symbol, 100)
        offset = fields["offset"]
        decimals = 2 if symbol in (FUTURE, SPOT) else 1  # the tick; 0.05 % lands off it
        price = None if offset is None else f"{base * (1 + offset / 100):.{decimals}f}"
        if fields["edge"] is not None and symbol in PRICES:
            price = self.band_edge(symbol, *fields["edge"])
        if fields["kind"] == "market" and offset != 40:  # a market order with a price: refused
            price = None
        texts = QTYS.get(symbol, ["1"])
        gated = self.open_order(fields["order"])
        order_id = f"o{self.count}"
        if fields["action"] != "new" or (gated and fields["order"] == 0):
            order_id = gated.order_id if gated else "missing"
        tif = fields["tif"] or ("gtc" if fields["kind"] == "limit" else "ioc")
        leg = fields["leg"] or ("long" if fields["account"] == "bob" else "both")
        if leg == "long" and fields["side"] == "sell" and not fields["leg"]:
            leg = "short"
        return order(
            self.log, order_id, fields["account"], symbol, fields["side"],
            texts[fields["qty"] % len(texts)], price, action=fields["action"],
            order_type=fields["kind"], time_in_force=tif, position_side=leg,
            reduce_only=fields["reduce_only"], margin=fields["margin"],
        )  # fmt: skip

    def band_edge(self, symbol: str, direction: int, outside: int) -> str | None:
        """The last price on the tick inside the 5 % band around the current mark (``outside``
        0) or the first beyond it (1), above (``direction`` 1) or below (-1) the mark."""
        mark, _why, _until = self.market.mark_status(symbol, self.log.ts)
        if mark is None:
            return None
        instrument = self.ledger.instruments[symbol]
        tick, scale = instrument.tick_size, instrument.price_scale
        half = mark * 5 // 100
        edge = (mark + half) // tick * tick if direction > 0 else -((half - mark) // tick) * tick
        units = edge + direction * outside * tick
        return f"{units / 10**scale:.{scale}f}"

    def fill(self, pick: int, whole: bool):
        gated = self.open_order(pick)
        if gated is None:
            return self.log.fill(PERP, str(PRICES[PERP]), "0.01", buyer="alice", seller="mm")
        texts = QTYS[gated.symbol]
        price = f"{gated.price / 10 ** self.ledger.instruments[gated.symbol].price_scale}"
        qty = abs(gated.qty) if whole else max(1, abs(gated.qty) // 2)
        scale = self.ledger.instruments[gated.symbol].qty_scale
        text = f"{qty / 10**scale:.{scale}f}" if scale else str(qty)
        assert texts  # the instrument is one of ours
        mine = {"buy_order_id" if gated.qty > 0 else "sell_order_id": gated.order_id}
        sides = {"buyer_position_side" if gated.qty > 0 else "seller_position_side":
                 gated.position_side}  # fmt: skip
        buyer, seller = (gated.account, "mm") if gated.qty > 0 else ("mm", gated.account)
        return self.log.fill(gated.symbol, price, text, buyer=buyer, seller=seller, **mine,
                             **sides)  # fmt: skip

    def admin(self, step: tuple):
        log, kind = self.log, step[0]
        if kind == "leverage":
            return log.make(SetLeverage, account=step[1], symbol=PERP, leverage=step[2])
        if kind == "state":
            target = {"platform": "", "instrument": PERP, "account": "alice"}[step[1]]
            return log.make(SetTradingState, scope=step[1], target=target, state=step[2])
        if kind == "gate":
            return log.make(GateConfigured, max_open_orders=step[1], rate_capacity=step[2],
                            rate_per_second=1)  # fmt: skip
        if kind == "limits":
            return gate_config(log, PERP, position_limit=step[1], open_interest_cap=step[2],
                               max_notional=step[3])  # fmt: skip
        if kind == "params":
            return log.make(InstrumentParamsChanged, symbol=PERP, **step[1])
        _, account, asset, amount = step
        if amount.startswith("-"):
            return log.make(Withdrawal, account=account, asset=asset, amount=amount[1:])
        return log.make(Deposit, account=account, asset=asset, amount=amount)


@settings(max_examples=EXAMPLES, deadline=None)
@given(steps=steps)
def test_fast_new_order_path_matches_the_general_path_on_random_logs(steps) -> None:
    log = setup_log()
    fast, _ = run(log.events, gated_engine())
    reference, _ = run(log.events, reference_engine())
    log.events.clear()
    driver = Driver(log, reference)
    for step in steps:
        event = driver.event(step)
        assert fast.process(event) == reference.process(event), event
    assert fast.state_hash() == reference.state_hash()


def test_a_plain_cross_limit_order_takes_the_fast_path() -> None:
    """The path the benchmark times is the fast one, and answers what the general one does."""
    log = setup_log()
    fast, _ = run(log.events, gated_engine())
    reference, _ = run(log.events, reference_engine())
    request = order(log, "fast", "alice", PERP, "buy", "0.01", "49990")
    gate = fast.component("gate")
    gate._decide = lambda event: pytest.fail(f"general path taken for {event}")
    accepted = fast.process(request)
    assert isinstance(accepted[0], OrderAccepted)
    assert accepted == reference.process(request)
    assert fast.state_hash() == reference.state_hash()


def test_the_gate_observes_every_event_kind_it_does_not_own() -> None:
    """The ledger and the market change state only through events, so the gate observes
    every kind it does not own, each dropping what it may change (docs/gate.md's table)."""
    gate = gated_engine().component("gate")
    observed = set(gate.observers())
    assert observed == set(event_types()) - set(gate.handlers())


def test_a_trading_state_change_drops_the_context_of_the_pair() -> None:
    """An account halted right after an accepted order (no other event between): its next
    order is refused, not accepted from the context resolved before."""
    log = setup_log()
    engine, _ = run(log.events, gated_engine())
    first = engine.process(order(log, "a1", "alice", PERP, "buy", "0.01", "49990"))
    assert isinstance(first[0], OrderAccepted)
    engine.process(log.make(SetTradingState, scope="account", target="alice", state="halted"))
    (refused,) = engine.process(order(log, "a2", "alice", PERP, "buy", "0.01", "49990"))
    assert refused.reason == "account_halted"


def test_a_fill_between_other_accounts_keeps_the_context_and_the_fills_own_are_redone() -> None:
    """A fill moves no mark: a third account's context stands (its next order is decided
    without resolving it again), while the buyer's and seller's are resolved afresh."""
    log = setup_log()
    engine, _ = run(log.events, gated_engine())
    reference, _ = run(log.events, reference_engine())
    gate = engine.component("gate")
    resolved: list[str] = []
    resolve = gate._resolve
    gate._resolve = lambda account, symbol, now: (
        resolved.append(account) or resolve(account, symbol, now)
    )
    events = [
        order(log, "a1", "alice", PERP, "buy", "0.01", "49990"),
        order(log, "b1", "bob", PERP, "buy", "0.01", "49990", position_side="long"),
        fill := log.fill(PERP, "50000", "0.5", buyer="alice", seller="mm"),
        order(log, "a2", "alice", PERP, "buy", "0.01", "49990"),
        order(log, "b2", "bob", PERP, "sell", "0.01", "50010", position_side="short"),
    ]
    for event in events:
        answer = engine.process(event)
        assert answer == reference.process(event), event
        assert event is fill or isinstance(answer[0], OrderAccepted), answer
    assert engine.component("ledger").open_interest[PERP] == 500  # the fill was applied
    assert resolved == ["alice", "bob", "alice"]
    assert engine.state_hash() == reference.state_hash()


KEEP_AGGREGATES = [
    # balances, read live: money moves, funding payments, loans, isolated margin
    "Borrow", "Deposit", "FundingPayment", "InterestDue", "MarginTransfer", "Repay", "Transfer",
    "Withdrawal",
    # registries and settings that move no mark or position (modes: refused with positions)
    "AccountOpened", "AssetListed", "InstrumentListed", "InstrumentParamsChanged",
    "LiquidationConfigured", "LoanAssetConfigured", "ObservedLiquidation", "SetMarginMode",
    "SetPositionMode", "SpotMarginConfigured",
    # the rules component's events
    "ApiKeyCreated", "ApiKeyUsed", "ListEntryAdded", "ListEntryRemoved", "Login",
    "RulePackLoaded", "RulePackRemoved", "SecurityChange", "WithdrawalRequest",
]  # fmt: skip


def test_the_kinds_that_keep_the_cross_aggregates_are_reviewed() -> None:
    """A kind the gate does not place drops the contexts but keeps the cross aggregates,
    which is right only for a kind that moves no mark and no position. This list is that
    review: a new event kind fails here until it is placed (docs/gate.md's table)."""
    gate = gated_engine().component("gate")
    keeping = [k.__name__ for k, observer in gate.observers().items()
               if observer == gate._drop_contexts]  # fmt: skip
    assert sorted(keeping) == sorted(KEEP_AGGREGATES)
