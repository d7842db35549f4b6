"""Pre-trade gate benchmark: the full decision for a cross account with 4 positions and 20
open orders on a tiered instrument, and NautilusTrader's RiskEngine on a comparable order.

Run: ``.venv/bin/python benchmarks/bench_gate.py`` (>= 1,000,000 decisions; ``--smoke`` for a
few seconds). Prints p50 / p99 / p999 and decisions per second for

* ``gate handler``: ``Gate`` deciding an ``OrderRequest`` (all checks, cross margin on 4
  positions, tier leverage, reservation) — the decision itself;
* ``engine.process``: the same through ``Engine.process`` (sequence and dedupe admission);
* ``engine.process, mixed``: the same in a stream that also carries, untimed, a fill between
  two other accounts after every 4th decision, a quote of an index the account holds nothing
  on after every 2nd, and a quote of the traded symbol's index after every 100th (after
  which the account's context and cross aggregate are resolved again), to show what the
  caches are worth between the events that drop them;
* ``nautilus RiskEngine``: ``RiskEngine.execute(SubmitOrder)`` (PyPI ``nautilus_trader``, the
  ``bench`` extra) on a margin account, limit order, rate limit raised; printed with the ratio
  when the package is importable, else reported absent.

``--instructions`` decides 2,000 requests untimed, each inside one ``operator.call``, for an
instruction count that the machine's load cannot disturb::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no \
        --toggle-collect=_operator_call .venv/bin/python benchmarks/bench_gate.py --instructions

counts only the decisions (not the untimed cancels); the ``I refs`` total / 2,000 is the
instruction count of one decision. ``--bytecodes`` traces 500 decisions opcode by opcode
(``sys.settrace``) and prints the Python bytecodes per decision, by function; with ``--cold``
the gate's epoch moves (untraced) before each decision, as any price tick or fill between two
requests moves it, so that each decision first resolves its context.

Every timed request is accepted; an untimed ``OrderDone`` cancels it so that the state (20
resting orders) is the same for each decision. Marks do not move between decisions, so the
request takes the gate's fast path: the account's context on the instrument (mark, band, cross
aggregate, leverage bracket; ``Gate._resolve``) is resolved once and read by every decision,
as between two events the gate does not own (a price tick, a fill, a deposit).
"""

from __future__ import annotations

import argparse
import collections
import operator
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository's tests.factories importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.factories import LISTINGS, Log, gate_config, gated_engine, order, priced, run

from fengkong.gate.events import GateConfigured, OrderAccepted, OrderDone, SetLeverage
from fengkong.market.events import SourcePrice
from fengkong.model.events import AccountOpened, Deposit, InstrumentListed

SYMBOLS = ("BTCUSDT-PERP", "ETHUSDT-PERP", "SOLUSDT-PERP", "BNBUSDT-PERP")
PRICE = "50000"
CHUNK = 50_000


def percentiles(samples_ns: np.ndarray) -> tuple[float, float, float]:
    p50, p99, p999 = np.percentile(samples_ns / 1000.0, [50, 99, 99.9])
    return float(p50), float(p99), float(p999)


def build():
    """A cross account with 4 positions (one per perpetual) and 20 resting limit orders."""
    log = Log()
    log.assets()
    for symbol in SYMBOLS:
        log.make(InstrumentListed, symbol=symbol, **LISTINGS["BTCUSDT-PERP"])
    for account, amount in (("alice", "10000000"), ("mm", "1000000000")):
        log.make(AccountOpened, account=account)
        log.make(Deposit, account=account, asset="USDT", amount=amount)
    for symbol in SYMBOLS:
        priced(log, symbol, PRICE, perpetual=True)
        gate_config(log, symbol)
    log.make(GateConfigured, max_open_orders=200, rate_capacity=10**9, rate_per_second=10**6)
    log.make(SetLeverage, account="alice", symbol=SYMBOLS[0], leverage=50)
    for i, symbol in enumerate(SYMBOLS):
        buyer, seller = ("alice", "mm") if i % 2 == 0 else ("mm", "alice")
        log.fill(symbol, PRICE, f"0.{i + 1}", buyer=buyer, seller=seller)
    for i in range(20):
        order(log, f"rest{i}", "alice", SYMBOLS[0], "buy", "0.01", str(49_000 + 10 * i))
    engine, outputs = run(log.events, gated_engine())
    assert sum(isinstance(o, OrderAccepted) for o in outputs) == 20, outputs[-5:]
    return log, engine


def requests(log: Log, start: int, count: int, ts: int):
    """``count`` (request, done) pairs at event time ``ts``: limit buys/sells near the mark."""
    pairs = []
    for i in range(start, start + count):
        side = "buy" if i % 2 == 0 else "sell"
        price = str(49_900 + 10 * (i % 20)) if side == "buy" else str(50_100 + 10 * (i % 20))
        request = order(log, f"b{i}", "alice", SYMBOLS[0], side, "0.005", price, ts=ts)
        done = log.make(OrderDone, order_id=f"b{i}", reason="cancelled", ts=ts)
        pairs.append((request, done))
    log.events.clear()
    return pairs


def bench_fengkong(n: int, through_engine: bool) -> tuple[np.ndarray, float]:
    log, engine = build()
    gate = engine.component("gate")
    ts = log.ts
    clock = time.perf_counter_ns
    samples = np.empty(n, dtype=np.int64)
    done_total = 0
    process = engine.process
    decide = gate._on_request
    finish = gate._on_done
    for start in range(0, n, CHUNK):
        pairs = requests(log, start, min(CHUNK, n - start), ts)
        for j, (request, done) in enumerate(pairs):
            if through_engine:
                t0 = clock()
                answer = process(request)
                t1 = clock()
                process(done)
            else:
                t0 = clock()
                answer = decide(request)
                t1 = clock()
                finish(done)
            samples[start + j] = t1 - t0
            done_total += type(answer[0]) is OrderAccepted
    assert done_total == n, f"only {done_total} of {n} accepted"
    return samples, n / (samples.sum() / 1e9)


def count_instructions(n: int) -> None:
    """``n`` decisions, each inside ``operator.call`` (the callgrind toggle), after as many
    untimed warm-up decisions; every one accepted and cancelled as in the timed loop."""
    log, engine = build()
    gate = engine.component("gate")
    decide, finish, call = gate._on_request, gate._on_done, operator.call
    for request, done in requests(log, 0, n, log.ts):
        decide(request)
        finish(done)
    accepted = 0
    for request, done in requests(log, n, n, log.ts):
        accepted += type(call(decide, request)[0]) is OrderAccepted
        finish(done)
    assert accepted == n, f"only {accepted} of {n} accepted"
    print(f"{n} decisions")


def count_bytecodes(n: int, cold: bool) -> None:
    """Python bytecodes executed per decision (an opcode trace of ``n`` decisions after as
    many untimed ones), in total and by function; deterministic, unlike the timings."""
    log, engine = build()
    gate = engine.component("gate")
    decide, finish = gate._on_request, gate._on_done
    for request, done in requests(log, 0, n, log.ts):
        decide(request)
        finish(done)
    by_function: collections.Counter[str] = collections.Counter()

    def opcodes(frame, event, _arg):
        if event == "opcode":
            by_function[frame.f_code.co_qualname] += 1
        return opcodes

    def enter(frame, _event, _arg):
        frame.f_trace_opcodes, frame.f_trace_lines = True, False
        return opcodes

    for request, done in requests(log, n, n, log.ts):
        if cold:
            gate._bump()
        sys.settrace(enter)
        answer = decide(request)
        sys.settrace(None)
        assert type(answer[0]) is OrderAccepted, answer
        finish(done)
    print(f"{by_function.total() / n:.1f} bytecodes per {'cold ' if cold else ''}decision "
          f"({n} decisions)")  # fmt: skip
    for name, count in by_function.most_common():
        print(f"{count / n:9.1f}  {name}")


FILL_EVERY = 4
"""Mixed stream: after every 4th decision, a fill between two other accounts."""
OTHER_EVERY = 2
"""Mixed stream: after every 2nd decision, a source quote of an index the account holds
nothing on (the caches that read other marks stand)."""
TICK_EVERY = 100
"""Mixed stream: after every 100th decision, a source quote of the traded symbol's index
(its mark is re-evaluated: the account's context and cross aggregate are resolved again)."""
OTHER = "XRPUSDT-PERP"


def bench_mixed(n: int) -> tuple[np.ndarray, float]:
    """The decision through ``Engine.process`` in a stream that also carries fills of other
    accounts (``FILL_EVERY``), quotes of an unrelated index (``OTHER_EVERY``) and of the
    traded symbol's (``TICK_EVERY``), processed untimed: what the gate's caches are worth
    between the events that drop them."""
    log, engine = build()
    log.events.clear()
    log.make(AccountOpened, account="bob")
    log.make(Deposit, account="bob", asset="USDT", amount="10000000")
    log.make(InstrumentListed, symbol=OTHER, **LISTINGS["BTCUSDT-PERP"])
    priced(log, OTHER, PRICE, perpetual=True)
    gate_config(log, OTHER)
    for event in log.events:
        engine.process(event)
    ts = log.ts
    clock = time.perf_counter_ns
    process = engine.process
    samples = np.empty(n, dtype=np.int64)
    accepted = 0
    for i in range(n):
        ((request, done),) = requests(log, i, 1, ts)  # the timed loop's request and its cancel
        t0 = clock()
        answer = process(request)
        samples[i] = clock() - t0
        accepted += type(answer[0]) is OrderAccepted
        process(done)
        if i % FILL_EVERY == FILL_EVERY - 1:
            buyer, seller = ("bob", "mm") if i % (2 * FILL_EVERY) < FILL_EVERY else ("mm", "bob")
            process(log.fill(SYMBOLS[1], PRICE, "0.001", buyer=buyer, seller=seller, ts=ts))
        if i % OTHER_EVERY == OTHER_EVERY - 1:
            process(log.make(SourcePrice, source="src1", symbol=f"{OTHER}-IX", price=PRICE,
                             time=ts, ts=ts))  # fmt: skip
        if i % TICK_EVERY == TICK_EVERY - 1:
            process(log.make(SourcePrice, source="src0", symbol=f"{SYMBOLS[0]}-IX",
                             price=PRICE, time=ts, ts=ts))  # fmt: skip
    assert accepted == n, f"only {accepted} of {n} accepted"
    return samples, n / (samples.sum() / 1e9)


def bench_nautilus(n: int) -> tuple[np.ndarray, float] | None:
    """RiskEngine.execute(SubmitOrder), limit order on a margin account (nautilus test kit)."""
    try:
        from nautilus_trader.common.component import MessageBus, TestClock
        from nautilus_trader.config import ExecEngineConfig, RiskEngineConfig
        from nautilus_trader.core.uuid import UUID4
        from nautilus_trader.execution.engine import ExecutionEngine
        from nautilus_trader.execution.messages import SubmitOrder
        from nautilus_trader.model.currencies import USD
        from nautilus_trader.model.enums import AccountType, OrderSide
        from nautilus_trader.model.identifiers import ClientId, Venue
        from nautilus_trader.model.objects import Price, Quantity
        from nautilus_trader.portfolio.portfolio import Portfolio
        from nautilus_trader.risk.engine import RiskEngine
        from nautilus_trader.test_kit.mocks.exec_clients import MockExecutionClient
        from nautilus_trader.test_kit.providers import TestInstrumentProvider
        from nautilus_trader.test_kit.stubs.component import TestComponentStubs
        from nautilus_trader.test_kit.stubs.events import TestEventStubs
        from nautilus_trader.test_kit.stubs.identifiers import TestIdStubs
        from nautilus_trader.trading.strategy import Strategy
    except ImportError:
        return None
    clock = TestClock()
    trader_id = TestIdStubs.trader_id()
    venue = Venue("SIM")
    msgbus = MessageBus(trader_id=trader_id, clock=clock)
    cache = TestComponentStubs.cache()
    portfolio = Portfolio(msgbus=msgbus, cache=cache, clock=clock)
    exec_engine = ExecutionEngine(msgbus=msgbus, cache=cache, clock=clock,
                                  config=ExecEngineConfig())  # fmt: skip
    risk = RiskEngine(
        portfolio=portfolio, msgbus=msgbus, cache=cache, clock=clock,
        config=RiskEngineConfig(max_order_submit_rate="1000000/00:00:01",
                                max_notional_per_order={"AUD/USD.SIM": 10_000_000}),
    )  # fmt: skip
    client = MockExecutionClient(
        client_id=ClientId(venue.value), venue=venue, account_type=AccountType.MARGIN,
        base_currency=USD, msgbus=msgbus, cache=cache, clock=clock,
    )  # fmt: skip
    portfolio.update_account(TestEventStubs.margin_account_state())
    exec_engine.register_client(client)
    instrument = TestInstrumentProvider.default_fx_ccy("AUD/USD")
    cache.add_instrument(instrument)
    strategy = Strategy()
    strategy.register(trader_id=trader_id, portfolio=portfolio, msgbus=msgbus, cache=cache,
                      clock=clock)  # fmt: skip
    factory = strategy.order_factory
    samples = np.empty(n, dtype=np.int64)
    timer = time.perf_counter_ns
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        commands = []
        for i in range(count):
            limit = factory.limit(
                instrument.id, OrderSide.BUY if i % 2 == 0 else OrderSide.SELL,
                Quantity.from_int(1000), Price.from_str("1.00000"),
            )  # fmt: skip
            commands.append(SubmitOrder(trader_id=trader_id, strategy_id=strategy.id,
                                        order=limit, command_id=UUID4(),
                                        ts_init=clock.timestamp_ns()))  # fmt: skip
        for j, command in enumerate(commands):
            t0 = timer()
            risk.execute(command)
            samples[start + j] = timer() - t0
    return samples, n / (samples.sum() / 1e9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few seconds, small n")
    parser.add_argument("-n", type=int, default=None, help="decisions per measure")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="2,000 untimed decisions, each in operator.call (for callgrind)",
    )
    parser.add_argument(
        "--bytecodes", action="store_true", help="Python bytecodes per decision (opcode trace)"
    )
    parser.add_argument(
        "--cold", action="store_true", help="with --bytecodes: a new epoch before each decision"
    )
    args = parser.parse_args()
    if args.bytecodes:
        count_bytecodes(args.n or 500, args.cold)
        return
    if args.instructions:
        count_instructions(args.n or 2_000)
        return
    n = args.n or (20_000 if args.smoke else 1_000_000)
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"load average {os.getloadavg()[0]:.2f}, n = {n:,}")  # fmt: skip
    print(f"{'measure':26} {'p50 µs':>8} {'p99 µs':>8} {'p999 µs':>9} {'decisions/s':>12}")
    rows = {}
    for name, run_it in (
        ("gate handler", lambda: bench_fengkong(n, through_engine=False)),
        ("engine.process", lambda: bench_fengkong(n, through_engine=True)),
        ("engine.process, mixed", lambda: bench_mixed(n)),
        ("nautilus RiskEngine", lambda: bench_nautilus(n)),
    ):
        result = run_it()
        if result is None:
            print(f"{name:26} peer absent: pip install nautilus_trader (the 'bench' extra)")
            continue
        samples, rate = result
        p50, p99, p999 = percentiles(samples)
        rows[name] = (p50, p99)
        print(f"{name:26} {p50:8.2f} {p99:8.2f} {p999:9.2f} {rate:12,.0f}")
    print("goals: gate p50 <= 3 µs, p99 <= 10 µs; >= 4x faster than the RiskEngine")
    if "nautilus RiskEngine" in rows:
        peer = rows["nautilus RiskEngine"]
        for name in ("gate handler", "engine.process"):
            ours = rows[name]
            print(f"ratio nautilus / {name}: p50 {peer[0] / ours[0]:.1f}x, "
                  f"p99 {peer[1] / ours[1]:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
