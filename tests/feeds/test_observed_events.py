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
