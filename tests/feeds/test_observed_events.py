"""Forced-order records and a Deribit chain as sequenced input events (real files)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from fengkong.feeds.binance_force_orders import iter_force_orders
from fengkong.feeds.deribit_options import iter_deribit_options
from fengkong.feeds.events import observed_liquidations, option_marks, sequence
from fengkong.market.deribit import valuation_window
from fengkong.market.events import ObservedLiquidation, OptionMark
from fengkong.model.events import json_event_decoder

FORCE_ORDERS = "binance-um-forceorder-stream-2024-08-17.csv"
CHAIN = "deribit-btc-options-snapshot-2026-03.csv"


def test_every_forced_order_becomes_one_observed_liquidation_in_time_order(shared_data):
    records = list(iter_force_orders(shared_data / FORCE_ORDERS))
    events = list(sequence(observed_liquidations(records, venue="binance"), start_seq=1))
    assert len(events) == len(records) == 456
    assert all(isinstance(e, ObservedLiquidation) for e in events)
    assert [e.seq for e in events] == list(range(1, 457))
    assert len({e.id for e in events}) == 456
    first = events[0]
    assert (first.ts, first.symbol, first.price) == (
        records[0].trade_time, records[0].symbol, records[0].price,
    )  # fmt: skip
    decoded = [json_event_decoder().decode(msgspec.json.encode(e)) for e in events]
    assert decoded == events


def test_chain_rows_become_option_marks_with_the_iv_as_an_exact_fraction(shared_data):
    rows = list(iter_deribit_options(shared_data / CHAIN))
    window = valuation_window(
        (r.expiration_timestamp, r.values["mark_iv"], r.values["theta"], r.values["vega"])
        for r in rows
    )
    at = int(window.middle)
    events = list(sequence(option_marks(rows, at=at), start_seq=10))
    assert len(events) == 166
    assert all(isinstance(e, OptionMark) and e.ts == at for e in events)
    for row, event in zip(rows, events, strict=True):
        assert event.symbol == row.instrument_name
        assert Decimal(event.mark_iv) * 100 == Decimal(row.values["mark_iv"])
        assert event.underlying_price == row.values["underlying_price"]


def test_forced_orders_and_option_marks_are_kept_by_the_engine_and_survive_restore(shared_data):
    from fengkong.engine import Engine
    from fengkong.model.events import InstrumentListed, Rejected
    from tests.factories import Log

    records = list(iter_force_orders(shared_data / FORCE_ORDERS))
    rows = list(iter_deribit_options(shared_data / CHAIN))
    option = rows[0]
    log = Log()
    log.assets()
    log.make(
        InstrumentListed, symbol=option.instrument_name, kind="option", base="BTC", quote="USD",
        settle="BTC", tick_size="0.0001", lot_size="0.1", min_qty="0.1", max_qty="10000",
        expiry=option.expiration_timestamp, option_kind=option.kind.value,
        strike=option.values["strike"],
    )  # fmt: skip
    engine = Engine()
    outputs = [o for e in log.events for o in engine.process(e)]
    at = records[-1].trade_time + 1
    drafts = [*observed_liquidations(records, venue="binance"), *option_marks([option], at=at)]
    for event in sequence(drafts, start_seq=log.seq):
        outputs.extend(engine.process(event))
    assert not [o for o in outputs if isinstance(o, Rejected)]
    market = engine.component("market")
    btc = [r for r in records if r.symbol == "BTCUSDT"]
    count, quantity, notional = market.observed_liquidations("binance", "BTCUSDT")
    assert count == len(btc)
    assert Decimal(quantity) / 10**8 == sum(Decimal(r.filled_qty) for r in btc)
    expected = sum(Decimal(r.filled_qty) * Decimal(r.average_price) for r in btc)
    assert Decimal(notional) / 10**16 == expected
    ts, underlying, iv = market.option_mark(option.instrument_name)
    assert ts == at
    assert Decimal(underlying) / 10**8 == Decimal(option.values["underlying_price"])
    assert Decimal(iv) / 10**6 == Decimal(option.values["mark_iv"])
    restored = Engine.restore(engine.snapshot())
    assert restored.state_hash() == engine.state_hash()
    assert restored.component("market").option_mark(option.instrument_name) == (ts, underlying, iv)
