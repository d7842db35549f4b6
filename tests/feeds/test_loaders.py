"""Loaders read the real files in ../shared/data as published (see its README for sources)."""

from __future__ import annotations

from fengkong.feeds.binance_force_orders import iter_force_orders
from fengkong.feeds.binance_funding import iter_funding, settlement_time
from fengkong.feeds.deribit_options import iter_deribit_options
from fengkong.model.enums import OptionKind, Side


def test_binance_btcusdt_funding_history(shared_data):
    rows = list(iter_funding(shared_data / "binance-um-funding-btcusdt.csv"))
    assert len(rows) == 7119  # README §4
    assert rows[0].calc_time == 1577836800000 and rows[0].rate == "-0.00012359"
    assert rows[10].rate == "0.00000084"  # line 12, published as 8.4E-7
    assert {r.interval_hours for r in rows} == {8}
    assert all(settlement_time(r.calc_time) % (8 * 3_600_000) == 0 for r in rows)


def test_solusdt_funding_has_the_ftx_dynamic_intervals(shared_data):
    hours = {r.interval_hours for r in iter_funding(shared_data / "binance-um-funding-solusdt.csv")}
    assert hours == {2, 4, 8}  # README §4: 4h then 2h in November 2022


def test_force_orders_stream(shared_data):
    rows = list(iter_force_orders(shared_data / "binance-um-forceorder-stream-2024-08-17.csv"))
    assert len(rows) == 456 and len({r.symbol for r in rows}) == 72  # README §6
    first = rows[0]
    assert (first.symbol, first.side, first.qty, first.price) == (
        "RAREUSDT",
        Side.BUY,
        "4421",
        "0.2226588",
    )
    assert first.trade_time == 1723895903305


def test_deribit_chain(shared_data):
    rows = list(iter_deribit_options(shared_data / "deribit-btc-options-snapshot-2026-03.csv"))
    assert len(rows) == 166
    assert len({r.expiration_timestamp for r in rows}) == 8
    assert rows[0].instrument_name == "BTC-13MAR26-61000-C" and rows[0].kind is OptionKind.CALL
    assert rows[0].values["mark_iv"] == "63.29"
