"""Invariants of the core over random mixes of valid and invalid events (hypothesis).

For every generated log: money is conserved per asset (the sum over all accounts, system
accounts included, equals deposits minus withdrawals, exactly); no balance other than the
settlement clearing account is negative; a rejected event changes nothing; two engines fed
the same log agree; snapshot + restore + the rest of the log equals the uninterrupted run; a
re-delivered id changes nothing. In CI each property runs 2,000 examples.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from fengkong.engine import Engine
from fengkong.ledger.state import SETTLEMENT
from fengkong.model.events import (
    Deposit,
    Duplicate,
    Event,
    FundingPayment,
    MarginTransfer,
    Rejected,
    Settlement,
    Transfer,
    Withdrawal,
)
from fengkong.model.fixed import parse_units
from tests.conftest import IN_CI
from tests.factories import ASSETS, EXPIRY, Log

EXAMPLES = 2000 if IN_CI else 300

SYMBOLS = ["BTCUSDT", "BTCUSDT-PERP", "BTCUSD-PERP", "ETHUSDT-260327", "BTC-27MAR26-70000-C"]
PRICES = {
    "BTCUSDT": (60_000, "0.01"),
    "BTCUSDT-PERP": (60_000, "0.1"),
    "BTCUSD-PERP": (60_000, "0.1"),
    "ETHUSDT-260327": (3_000, "0.01"),
    "BTC-27MAR26-70000-C": (0.02, "0.0001"),
}
LOTS = {
    "BTCUSDT": "0.00001",
    "BTCUSDT-PERP": "0.001",
    "BTCUSD-PERP": "1",
    "ETHUSDT-260327": "0.01",
    "BTC-27MAR26-70000-C": "0.1",
}
ACCOUNTS = ["a", "b", "h", "iso"]  # h is in hedge mode, iso isolated on BTCUSDT-PERP
BAD_NUMBERS = ["nan", "inf", "1e3", "-1", "0", "0.123456789", "", "1,5", "0x10"]


def setup_log() -> Log:
    log = Log()
    log.assets()
    for symbol in SYMBOLS:
        log.listing(symbol)
    for account in ACCOUNTS:
        log.account(account, mode="hedge" if account == "h" else "one_way")
        for asset, amount in (("USDT", "200000"), ("BTC", "5"), ("ETH", "50")):
            log.deposit(account, asset, amount)
    log.isolated("iso", "BTCUSDT-PERP")
    return log


amounts = st.one_of(
    st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(50_000), places=8).map(
        lambda d: format(d.normalize(), "f")
    ),
    st.sampled_from(BAD_NUMBERS),
)
accounts = st.sampled_from([*ACCOUNTS * 5, "ghost", "sys:insurance"])
assets = st.sampled_from(["USDT", "USDT", "BTC", "BTC", "ETH", "DOGE"])


@st.composite
def prices(draw, symbol: str) -> str:
    if draw(st.integers(0, 20)) == 0:
        return draw(st.sampled_from(BAD_NUMBERS))
    base, tick = PRICES.get(symbol, (100, "0.1"))
    factor = draw(st.floats(0.3, 1.7))
    ticks = max(1, round(Decimal(str(base * factor)) / Decimal(tick)))
    return format((ticks * Decimal(tick)).normalize(), "f")


@st.composite
def quantities(draw, symbol: str) -> str:
    if draw(st.integers(0, 20)) == 0:
        return draw(st.sampled_from(BAD_NUMBERS))
    lot = Decimal(LOTS.get(symbol, "0.001"))
    return format((draw(st.integers(1, 3000)) * lot).normalize(), "f")


@st.composite
def actions(draw) -> tuple[str, dict]:
    kind = draw(
        st.sampled_from(
            [
                "deposit",
                "deposit",
                "withdrawal",
                "transfer",
                "fill",
                "fill",
                "fill",
                "fill",
                "funding",
                "margin",
            ]
        )
    )
    if kind in ("deposit", "withdrawal"):
        return kind, dict(account=draw(accounts), asset=draw(assets), amount=draw(amounts))
    if kind == "transfer":
        return kind, dict(
            from_account=draw(accounts),
            to_account=draw(accounts),
            asset=draw(assets),
            amount=draw(amounts),
        )
    if kind == "funding":
        symbol = draw(st.sampled_from(["BTCUSDT-PERP", "BTCUSD-PERP", "ETHUSDT-260327"]))
        rate = draw(st.sampled_from(["0.0001", "-0.00037", "0.003", "0", "-0.000012", "nan"]))
        return kind, dict(symbol=symbol, rate=rate, mark_price=draw(prices(symbol)))
    if kind == "margin":
        amount = draw(amounts)
        if draw(st.booleans()) and amount[:1].isdigit():
            amount = "-" + amount
        return kind, dict(account="iso", symbol="BTCUSDT-PERP", amount=amount)
    symbol = draw(st.sampled_from([*SYMBOLS * 4, "NOPE"]))
    buyer = draw(accounts)
    seller = draw(accounts.filter(lambda s: s != buyer) if draw(st.integers(0, 19)) else accounts)
    fields = dict(
        symbol=symbol,
        price=draw(prices(symbol)),
        qty=draw(quantities(symbol)),
        buyer=buyer,
        seller=seller,
        taker_side=draw(st.sampled_from(["buy", "sell"])),
        maker_fee_rate=draw(st.sampled_from(["0", "0.0002", "-0.0001", "0.00013"])),
        taker_fee_rate=draw(st.sampled_from(["0", "0.0004", "0.00075"])),
    )
    for party, field in ((buyer, "buyer_position_side"), (seller, "seller_position_side")):
        if party == "h":
            fields[field] = draw(st.sampled_from(["long", "short", "long", "short", "both"]))
        elif draw(st.integers(0, 30)) == 0:
            fields[field] = draw(st.sampled_from(["long", "short"]))
    return kind, fields


KINDS = {
    "deposit": Deposit,
    "withdrawal": Withdrawal,
    "transfer": Transfer,
    "funding": FundingPayment,
    "margin": MarginTransfer,
}


def build_log(steps: list[tuple[str, dict]], settle: bool) -> list[Event]:
    log = setup_log()
    for kind, fields in steps:
        if kind == "fill":
            log.fill(**fields)
        else:
            log.make(KINDS[kind], **fields)
    if settle:
        log.make(Settlement, symbol="ETHUSDT-260327", price="3111.11", ts=EXPIRY)
        log.make(Settlement, symbol="BTC-27MAR26-70000-C", price="71234.5", ts=EXPIRY)
    return log.events


def external_flows(engine: Engine, event: Event) -> tuple[str, int] | None:
    """The (asset, signed units) an accepted event brings in from outside, if any."""
    if isinstance(event, Deposit | Withdrawal):
        units = parse_units(event.amount, ASSETS[event.asset], field="amount")
        return event.asset, units if isinstance(event, Deposit) else -units
    return None


def check_balances(engine: Engine, expected: dict[str, int]) -> None:
    ledger = engine.component("ledger")
    totals = ledger.asset_totals()
    assert totals == {asset: expected[asset] for asset in totals}
    for account in ledger.accounts.values():
        for asset, held in account.balances.items():
            assert held.total == held.free + held.locked
            assert held.locked >= 0
            if account.id != SETTLEMENT:
                assert held.free >= 0, (account.id, asset, held)
        for position in account.positions.values():
            assert position.isolated_margin >= 0
    longs: dict[str, int] = {}
    for account in ledger.accounts.values():
        for position in account.positions.values():
            if position.qty > 0:
                longs[position.symbol] = longs.get(position.symbol, 0) + position.qty
    assert {s: n for s, n in ledger.open_interest.items() if n} == longs


events_and_cut = st.tuples(
    st.lists(actions(), min_size=1, max_size=40), st.booleans(), st.integers(0, 10_000)
)


@settings(max_examples=EXAMPLES)
@given(events_and_cut)
def test_conservation_rejections_and_non_negative_balances(case) -> None:
    steps, settle, _ = case
    events = build_log(steps, settle)
    engine = Engine()
    expected = dict.fromkeys(sorted(ASSETS), 0)
    for event in events:
        before = engine.state_hash()
        outputs = engine.process(event)
        if outputs and isinstance(outputs[0], Rejected):
            assert engine.state_hash() == before, outputs[0]
        else:
            flow = external_flows(engine, event)
            if flow is not None:
                expected[flow[0]] += flow[1]
        check_balances(engine, expected)


@settings(max_examples=EXAMPLES)
@given(events_and_cut)
def test_replay_snapshot_restore_and_redelivery_are_deterministic(case) -> None:
    steps, settle, cut_seed = case
    events = build_log(steps, settle)
    first, second = Engine(), Engine()
    outputs_first = [o for e in events for o in first.process(e)]
    outputs_second = [o for e in events for o in second.process(e)]
    assert outputs_first == outputs_second
    assert first.state_hash() == second.state_hash()

    cut = cut_seed % (len(events) + 1)
    partial = Engine()
    for event in events[:cut]:
        partial.process(event)
    restored = Engine.restore(partial.snapshot())
    assert restored.state_hash() == partial.state_hash()
    for event in events[cut:]:
        restored.process(event)
    assert restored.state_hash() == first.state_hash()
    assert restored.last_seq == first.last_seq

    final = first.state_hash()
    again = events[cut_seed % len(events)]
    assert first.process(again) == [Duplicate(seq=again.seq, id=again.id)]
    assert restored.process(again) == [Duplicate(seq=again.seq, id=again.id)]
    assert first.state_hash() == final == restored.state_hash()
