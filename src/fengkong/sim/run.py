"""A crash replay through the full engine: population, marks, liquidations, venue, metrics.

:func:`simulate` builds a seeded universe and account population
(:mod:`fengkong.sim.universe`, :mod:`fengkong.sim.population`) into an exact ledger, composes
the default engine (ledger, market, gate, liquidation, rules) around it, and drives it with
events only, each sequenced and applied by :meth:`fengkong.engine.Engine.process`:

1. setup — the liquidation policy, one single-source index and mark per instrument, the
   gate's tier table per instrument, the venue's market-maker account ``mm:venue`` (the
   counterparty of every liquidation fill, funded far beyond any loss it can take) and the
   insurance fund's opening balance (``fund_share`` of the book's notional per settlement
   asset, paid in as a deposit);
2. per point of the price path — a ``SourcePrice`` for every instrument: BTC contracts move
   with the path (``price = mark₀ × path/path₀``), every other instrument with a seeded beta in
   ``[1, 1 + alt_beta)`` (``mark₀ × (path/path₀)^β``: alts fall further, as they did in each
   of these crashes);
3. the engine's :class:`~fengkong.liquidation.events.LiquidationOrder` outputs go to the
   simulated venue (:class:`~fengkong.sim.venue.Venue`, square-root depth sized to
   ``depth_share`` of each instrument's open quantity per 1 % of impact), whose child fills and
   completion come back as ``LiquidationFill`` and ``LiquidationOrderDone`` events, until no
   order is left.

Metrics are sampled once a minute of event time; the summary checks conservation (per-asset
totals before and after), the queue invariant (every account below maintenance by the exact
check is in the liquidation queue) and negative equity at the end. Deterministic for a seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fengkong.engine.core import Engine
from fengkong.gate import Gate
from fengkong.gate.events import GateInstrumentConfigured, TierRow
from fengkong.ledger.contracts import RATE_SCALE
from fengkong.ledger.ledger import Ledger
from fengkong.ledger.state import INSURANCE
from fengkong.liquidation.component import LiquidationComponent
from fengkong.liquidation.events import (
    AutoDeleveraged,
    InsuranceFundChanged,
    LiquidationConfigured,
    LiquidationFill,
    LiquidationOrder,
    LiquidationOrderDone,
    LiquidationTriggered,
    PartialLiquidation,
    PositionTakenOver,
    SocializedLoss,
)
from fengkong.liquidation.exact import account_breaches
from fengkong.margin.tiers import TierTable
from fengkong.market.component import MarketComponent
from fengkong.market.events import (
    IndexConfigured,
    IndexConstituent,
    MarkConfigured,
    PerpetualFunding,
    SourcePrice,
)
from fengkong.market.index import OutlierRule
from fengkong.model.enums import InstrumentKind
from fengkong.model.events import AccountOpened, Deposit, Event
from fengkong.model.fixed import format_units
from fengkong.rules.component import RulesComponent
from fengkong.sim.population import make_population
from fengkong.sim.scenarios import PricePath
from fengkong.sim.universe import Universe, make_universe
from fengkong.sim.venue import DepthModel, Venue

__all__ = ["SimParams", "SimResult", "sim_components", "simulate"]

VENUE = "mm:venue"
SOURCE = "sim"
MINUTE_MS = 60_000
PROTECTION = 0.2
RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.8, 1.0)
"""Upper edges of the cross margin-ratio buckets (MM / equity); the last bucket is >= 1."""


@dataclass(frozen=True)
class SimParams:
    accounts: int = 100_000
    seed: int = 1
    instruments: int = 12
    inverse: int = 2
    fund_share: float = 0.01
    depth_share: float = 0.02
    alt_beta: float = 0.6
    clearance_rate: str = "0.005"
    partial_fee_rate: str = "0.0005"
    max_per_tick: int = 1_000
    partial: bool = True
    adl: bool = True


@dataclass
class SimResult:
    """The run's summary (JSON-ready) and its per-minute series; with ``keep_log`` the
    engine's snapshot before the first event (``start``) and every event sent (``events``):
    ``Engine.restore(start, sim_components())`` plus the events reproduces the run."""

    summary: dict[str, Any]
    series: dict[str, list[Any]] = field(default_factory=dict)
    start: bytes | None = None
    events: list[Event] | None = None


class _Driver:
    """Sequences events into the engine and routes liquidation orders through the venue."""

    def __init__(self, engine: Engine, venue: Venue, universe: Universe) -> None:
        self.engine = engine
        self.venue = venue
        self.instruments = {x.symbol: x for x in universe.instruments}
        self.seq = 0
        self.outputs: list[Any] = []
        self.events: list[Event] | None = None

    def send(self, event_type: type[Event], ts: int, **fields: Any) -> list[Any]:
        self.seq += 1
        event = event_type(seq=self.seq, id=f"sim-{self.seq}", ts=ts, **fields)
        if self.events is not None:
            self.events.append(event)
        produced = self.engine.process(event)
        self.outputs.extend(produced)
        return produced

    def price(self, ts: int, index: str, text: str) -> None:
        orders = [o for o in self.send(SourcePrice, ts, source=SOURCE, symbol=index, price=text,
                                       time=ts) if isinstance(o, LiquidationOrder)]  # fmt: skip
        while orders:
            orders = self._route(orders, ts)

    def _route(self, orders: list[LiquidationOrder], ts: int) -> list[LiquidationOrder]:
        """Fill each order at the venue; return the orders the answers produced."""
        market: MarketComponent = self.engine.component("market")
        live: dict[str, Any] = self.engine.component("liquidation").orders
        follow: list[LiquidationOrder] = []
        for order in {o.order_id: o for o in orders}.values():
            terms = live.get(order.order_id)  # the order's latest terms (orders are amended)
            if terms is None:
                continue
            x = self.instruments[order.symbol]
            reference = market.mark_price(order.symbol) or order.reference_price
            limit = _protected(terms.limit, reference, order.side == "sell") // x.tick_size
            filled = self.venue.fill(
                order.symbol, order.side == "sell", terms.qty // x.lot_size,
                reference // x.tick_size, limit, ts,
            )  # fmt: skip
            for child in filled.children:
                produced = self.send(
                    LiquidationFill, ts, order_id=order.order_id,
                    price=format_units(child.price * x.tick_size, x.price_scale),
                    qty=format_units(child.qty * x.lot_size, x.qty_scale), counterparty=VENUE,
                )  # fmt: skip
                follow += [o for o in produced if isinstance(o, LiquidationOrder)]
            produced = self.send(LiquidationOrderDone, ts, order_id=order.order_id)
            follow += [o for o in produced if isinstance(o, LiquidationOrder)]
        return follow


def _protected(limit: int | None, reference: int, sell: bool) -> int:
    """The venue's price protection: an order without a limit fills no further than
    :data:`PROTECTION` from the mark (the remainder stays with the clearing account)."""
    if limit is not None:
        return limit
    return round(reference * (1 - PROTECTION)) if sell else round(reference * (1 + PROTECTION))


def _tier_rows(table: TierTable) -> list[TierRow]:
    return [
        TierRow(
            floor=format_units(t.floor, table.scale), cap=format_units(t.cap, table.scale),
            max_leverage=str(t.max_leverage), mmr=format_units(t.mmr, RATE_SCALE),
        )
        for t in table.tiers
    ]  # fmt: skip


def sim_components(ledger: Ledger | None = None) -> list[Any]:
    """The default engine's components around ``ledger`` (a fresh one if None)."""
    ledger = Ledger() if ledger is None else ledger
    market = MarketComponent(ledger)
    gate = Gate(ledger, market)
    return [ledger, market, gate, LiquidationComponent(ledger, market, gate), RulesComponent()]


def _setup(driver: _Driver, universe: Universe, params: SimParams, ts: int, ledger: Ledger) -> None:
    driver.send(
        LiquidationConfigured, ts, clearance_rate=params.clearance_rate,
        partial_fee_rate=params.partial_fee_rate, max_per_tick=params.max_per_tick,
        partial=params.partial, adl=params.adl, exempt=[VENUE],
    )  # fmt: skip
    for x in universe.instruments:
        driver.send(
            IndexConfigured, ts, index=f"IX:{x.symbol}", price_scale=x.price_scale,
            constituents=[IndexConstituent(source=SOURCE, weight="1")], rule=OutlierRule.EXCLUDE,
            limit="0.5", stale_after_ms=3_600_000, min_sources=1,
        )  # fmt: skip
        perpetual = x.kind in (InstrumentKind.LINEAR_PERPETUAL, InstrumentKind.INVERSE_PERPETUAL)
        driver.send(
            MarkConfigured, ts, symbol=x.symbol, index=f"IX:{x.symbol}", basis_window=1,
            funding=PerpetualFunding() if perpetual else None,
        )  # fmt: skip
        driver.send(
            GateInstrumentConfigured, ts, symbol=x.symbol,
            tiers=_tier_rows(universe.tables[x.symbol]), default_leverage=20,
        )  # fmt: skip
    driver.send(AccountOpened, ts, account=VENUE)
    for asset, whole in (("USDT", 10**9), ("BTC", 10**5)):
        driver.send(Deposit, ts, account=VENUE, asset=asset, amount=str(whole))
    for asset, amount in sorted(_book_notional(ledger).items()):
        scale = ledger.assets[asset].scale
        fund = max(1, math.floor(amount * params.fund_share * 10**scale))
        driver.send(Deposit, ts, account=INSURANCE, asset=asset, amount=format_units(fund, scale))


def _book_notional(ledger: Ledger) -> dict[str, float]:
    """Σ |entry value| of the user positions per settlement asset, in whole-asset units."""
    totals: dict[str, float] = {}
    for account in ledger.accounts.values():
        for p in account.positions.values():
            if not p.qty:
                continue
            x = ledger.instruments[p.symbol]
            math_ = ledger.contract_math(p.symbol)
            value = abs(p.entry_value) / 10**math_.value_scale
            totals[x.settle] = totals.get(x.settle, 0.0) + value
    return totals


def _depths(ledger: Ledger, universe: Universe, share: float) -> dict[str, DepthModel]:
    open_lots = dict.fromkeys(universe.symbols, 0)
    for account in ledger.accounts.values():
        for p in account.positions.values():
            if p.symbol in open_lots:
                open_lots[p.symbol] += abs(p.qty) // ledger.instruments[p.symbol].lot_size
    return {s: DepthModel(depth=max(10.0, share * lots)) for s, lots in open_lots.items()}


def _ratio_buckets(liquidation: LiquidationComponent) -> list[int]:
    """Accounts with positions by their worst cross margin ratio (MM / equity), as the
    screen last computed it (every instrument moves at every path point, so every holder has
    just been revalued)."""
    screener = liquidation.screener
    book = liquidation.book
    n = book.accounts
    held = book.count[:n] > 0
    ratio = screener.ratio[:n].max(axis=1)
    ratio = np.where(np.isfinite(ratio), ratio, np.inf)[held]
    edges = np.searchsorted(np.array(RATIO_BUCKETS), ratio, side="right")
    return np.bincount(edges, minlength=len(RATIO_BUCKETS) + 1).tolist()


def simulate(
    path: PricePath,
    params: SimParams = SimParams(),
    progress: Callable[[int, int], None] | None = None,
    *,
    keep_log: bool = False,
) -> SimResult:
    """Run ``path`` through the full engine over a seeded population (module docstring);
    ``progress(done, total)`` is called once per path point."""
    started = time.perf_counter()
    universe = make_universe(params.instruments, params.inverse, seed=params.seed)
    population = make_population(universe, params.accounts, seed=params.seed)
    ledger = population.to_ledger()
    engine = Engine(sim_components(ledger))
    start = engine.snapshot() if keep_log else None
    positions = _positions(ledger)
    venue = Venue(_depths(ledger, universe, params.depth_share))
    driver = _Driver(engine, venue, universe)
    if keep_log:
        driver.events = []
    t0 = int(path.times_ms[0])
    _setup(driver, universe, params, t0, ledger)
    totals_before = ledger.asset_totals()
    fund_start = {a: _fund(ledger, a) for a in ("USDT", "BTC")}
    rng = np.random.default_rng(params.seed)
    betas = {
        x.symbol: 1.0 if x.base == "BTC" else 1.0 + params.alt_beta * float(rng.random())
        for x in universe.instruments
    }
    liquidation: LiquidationComponent = engine.component("liquidation")
    moves = path.moves()
    series: dict[str, list[Any]] = {k: [] for k in (
        "minute", "time_ms", "path", "mark", "partial", "takeover", "adl", "fund_usdt",
        "fund_btc", "queue", "ratio_buckets",
    )}  # fmt: skip
    counts = {"partial": 0, "takeover": 0, "adl": 0}
    seen = 0
    fund_low = dict(fund_start)
    btc = universe.instruments[0]
    total = len(moves)
    minute = None
    for k in range(total):
        ts = int(path.times_ms[k])
        for x, mark0 in zip(universe.instruments, universe.marks, strict=True):
            price = max(x.tick_size, round(mark0 * float(moves[k]) ** betas[x.symbol]))
            driver.price(ts, f"IX:{x.symbol}", format_units(price, x.price_scale))
        for output in driver.outputs[seen:]:
            if isinstance(output, PartialLiquidation):
                counts["partial"] += 1
            elif isinstance(output, PositionTakenOver):
                counts["takeover"] += 1
            elif isinstance(output, AutoDeleveraged):
                counts["adl"] += 1
            elif isinstance(output, InsuranceFundChanged):
                fund_low[output.asset] = min(fund_low.get(output.asset, 0), output.balance)
        seen = len(driver.outputs)
        this_minute = (ts - t0) // MINUTE_MS
        if this_minute != minute or k == total - 1:
            minute = this_minute
            series["minute"].append(this_minute)
            series["time_ms"].append(ts)
            series["path"].append(float(path.prices[k]))
            series["mark"].append((liquidation.marks.get(btc.symbol) or 0) / 10**btc.price_scale)
            for key in counts:
                series[key].append(counts[key])
            series["fund_usdt"].append(_fund(ledger, "USDT") / 1e8)
            series["fund_btc"].append(_fund(ledger, "BTC") / 1e8)
            series["queue"].append(len(liquidation.queue))
            series["ratio_buckets"].append(_ratio_buckets(liquidation))
        if progress is not None:
            progress(k + 1, total)
    summary = _summary(
        path, params, engine, ledger, liquidation, driver, totals_before, fund_start, fund_low,
        time.perf_counter() - started, positions,
    )  # fmt: skip
    return SimResult(summary, series, start, driver.events)


def _fund(ledger: Ledger, asset: str) -> int:
    balance = ledger.accounts[INSURANCE].balances.get(asset)
    return 0 if balance is None else balance.total


def _summary(
    path: PricePath,
    params: SimParams,
    engine: Engine,
    ledger: Ledger,
    liquidation: LiquidationComponent,
    driver: _Driver,
    totals_before: dict[str, int],
    fund_start: dict[str, int],
    fund_low: dict[str, int],
    seconds: float,
    positions: int,
) -> dict[str, Any]:
    outputs = driver.outputs
    partials = [o for o in outputs if isinstance(o, PartialLiquidation)]
    takeovers = [o for o in outputs if isinstance(o, PositionTakenOver)]
    adl = [o for o in outputs if isinstance(o, AutoDeleveraged)]
    socialized = [o for o in outputs if isinstance(o, SocializedLoss)]
    triggered = {o.account for o in outputs if isinstance(o, LiquidationTriggered)}
    totals_after = ledger.asset_totals()
    tables = liquidation.tables()
    breaches = {  # one exact check of every user account
        a: found
        for a in ledger.accounts
        if not a.startswith("sys:")
        and (found := account_breaches(ledger, a, tables, liquidation.marks))
    }
    below = list(breaches)
    negative = [b.account for found in breaches.values() for b in found if b.equity < 0]
    low_time, low_price = path.low()
    fund_end = {a: _fund(ledger, a) for a in fund_start}
    return {
        "scenario": path.name,
        "source": path.source,
        "synthetic": path.synthetic,
        "points": len(path.prices),
        "start_price": float(path.prices[0]),
        "low_price": low_price,
        "low_time_ms": low_time,
        "drawdown": 1.0 - low_price / float(path.prices[0]),
        "accounts": params.accounts,
        "positions": positions,
        "positions_at_end": _positions(ledger),
        "seed": params.seed,
        "params": {k: getattr(params, k) for k in params.__dataclass_fields__},
        "events": driver.seq,
        "outputs": len(outputs),
        "accounts_liquidated": len(triggered),
        "partial_liquidations": len(partials),
        "takeovers": len(takeovers),
        "adl_closes": len(adl),
        "adl_accounts": len({o.account for o in adl}),
        "adl_lights": dict(sorted(_count(o.lights for o in adl).items())),
        "socialized_loss": _by_asset(ledger, ((o.asset, o.amount) for o in socialized)),
        "bad_debt_covered": _by_asset(
            ledger, ((ledger.instruments[o.symbol].settle, o.insurance) for o in takeovers)
        ),
        "insurance_fund": {
            a: {
                "start": format_units(fund_start[a], 8),
                "end": format_units(fund_end[a], 8),
                "low": format_units(fund_low.get(a, fund_start[a]), 8),
                "drawdown": format_units(fund_start[a] - fund_low.get(a, fund_start[a]), 8),
            }
            for a in sorted(fund_start)
        },
        "totals_before": {a: str(v) for a, v in sorted(totals_before.items())},
        "totals_after": {a: str(v) for a, v in sorted(totals_after.items())},
        "conserved": totals_before == totals_after,
        "queue_at_end": len(liquidation.queue),
        "below_maintenance_not_queued": len(
            [a for a in below if a not in liquidation.queue and a != VENUE]
        ),
        "venue_below_maintenance": VENUE in below,  # exempt: the market, not a user
        "negative_equity_groups": len(negative),
        "orders_open_at_end": len(liquidation.orders),
        "state_hash": engine.state_hash(),
        "seconds": round(seconds, 1),
    }


def _positions(ledger: Ledger) -> int:
    users = (a for a in ledger.accounts.values() if not a.id.startswith("sys:"))
    return sum(1 for a in users for p in a.positions.values() if p.qty)


def _count(values) -> dict[int, int]:
    found: dict[int, int] = {}
    for v in values:
        found[v] = found.get(v, 0) + 1
    return found


def _by_asset(ledger: Ledger, pairs) -> dict[str, str]:
    totals: dict[str, int] = {}
    for asset, amount in pairs:
        if amount:
            totals[asset] = totals.get(asset, 0) + amount
    return {a: format_units(v, ledger.assets[a].scale) for a, v in sorted(totals.items())}
