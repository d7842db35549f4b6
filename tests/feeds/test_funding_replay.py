"""Replay the real Binance BTCUSDT funding history (../shared/data/binance-um-funding-btcusdt.csv,
7,119 settlements 2020-01-01 .. 2026-06-30) on an equal long and short of 1 BTC through the
ledger. Mark at each settlement: the most recent Binance spot daily close at or before it
(binance-spot-daily-btcusdt.csv, CryptoDataDownload), rounded to the 0.1 tick; after the
file's last day (2026-03-30) the last close is kept. The replay is about conservation, not
about the mark's exactness.
"""

from __future__ import annotations

import bisect
import csv
from decimal import ROUND_HALF_EVEN, Decimal

from fengkong.engine import Engine
from fengkong.feeds.binance_funding import iter_funding, settlement_time
from fengkong.ledger.ledger import Ledger
from fengkong.model.events import FundingPayment, FundingSettled
from tests.factories import exchange, run

DAY_MS = 86_400_000


def _daily_closes(path) -> tuple[list[int], list[str]]:
    with path.open(newline="") as handle:
        lines = handle.read().splitlines()[2:]  # URL line, header
    rows = sorted((int(r[0]), r[6]) for r in csv.reader(lines))
    closes = [
        (t + DAY_MS, str(Decimal(c).quantize(Decimal("0.1"), ROUND_HALF_EVEN))) for t, c in rows
    ]
    return [t for t, _ in closes], [c for _, c in closes]


def _total(ledger: Ledger) -> int:
    return sum(
        b.free + b.locked
        for a in ledger.accounts.values()
        for a_, b in a.balances.items()
        if a_ == "USDT"
    )


def test_real_btcusdt_funding_history_conserves_money_exactly(shared_data):
    times, closes = _daily_closes(shared_data / "binance-spot-daily-btcusdt.csv")
    log = exchange(
        "BTCUSDT-PERP", accounts={"long": {"USDT": "10000000"}, "short": {"USDT": "10000000"}}
    )
    log.fill("BTCUSDT-PERP", "7200", "1", buyer="long", seller="short")
    ledger = Ledger()
    engine, _ = run(log.events, Engine([ledger]))
    before = _total(ledger)
    paid = received = dust = settlements = 0
    for record in iter_funding(shared_data / "binance-um-funding-btcusdt.csv"):
        at = settlement_time(record.calc_time)
        i = bisect.bisect_right(times, at) - 1
        event = log.make(
            FundingPayment,
            ts=max(at, log.ts),
            symbol="BTCUSDT-PERP",
            rate=record.rate,
            mark_price=closes[max(i, 0)],
        )
        for output in engine.process(event):
            if isinstance(output, FundingSettled):
                paid += output.paid
                received += output.received
                dust += output.dust
                settlements += 1
        assert _total(ledger) == before  # after every settlement, to the last unit
    assert settlements == 7119
    assert paid - received == dust
    # Stated totals, USDT: payers paid 39,368.62175160 over 7,119 settlements; receivers got
    # 39,368.62172184; the 0.00002976 of rounding dust (charges rounded up, credits down) went
    # to sys:settlement, and the sum over all accounts never moved by one unit.
    assert paid == 3_936_862_175_160
    assert received == 3_936_862_172_184
    assert dust == 2_976
