"""Fixture kit shared by tests and benchmarks: a sequenced event log and standard listings.

``Log`` hands out gap-free sequence numbers, unique ids and increasing event times, so a
test writes only what it means: ``log.fill("BTCUSDT-PERP", "50000", "0.02", buyer=...)``.
"""

from __future__ import annotations

from typing import Any

from fengkong.engine import Engine
from fengkong.model.events import (
    AccountOpened,
    AssetListed,
    Deposit,
    Event,
    Fill,
    InstrumentListed,
    Output,
    SetMarginMode,
)
from tests.margin.tables import BTCUSDT_2021

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, ms
EXPIRY = 1_774_598_400_000  # 2026-03-27T08:00:00Z

ASSETS = {"USDT": 8, "BTC": 8, "ETH": 8, "USD": 2}

LISTINGS: dict[str, dict[str, Any]] = {
    "BTCUSDT": dict(
        kind="spot",
        base="BTC",
        quote="USDT",
        settle="USDT",
        tick_size="0.01",
        lot_size="0.00001",
        min_qty="0.00001",
        max_qty="9000",
        min_notional="5",
    ),
    "BTCUSDT-PERP": dict(
        kind="linear_perpetual",
        base="BTC",
        quote="USDT",
        settle="USDT",
        tick_size="0.1",
        lot_size="0.001",
        min_qty="0.001",
        max_qty="1000",
    ),
    "BTCUSD-PERP": dict(
        kind="inverse_perpetual",
        base="BTC",
        quote="USD",
        settle="BTC",
        tick_size="0.1",
        lot_size="1",
        min_qty="1",
        max_qty="1000000",
        multiplier="100",
    ),
    "ETHUSDT-260327": dict(
        kind="linear_future",
        base="ETH",
        quote="USDT",
        settle="USDT",
        tick_size="0.01",
        lot_size="0.01",
        min_qty="0.01",
        max_qty="10000",
        expiry=EXPIRY,
    ),
    "BTCUSD-260327": dict(
        kind="inverse_future",
        base="BTC",
        quote="USD",
        settle="BTC",
        tick_size="0.1",
        lot_size="1",
        min_qty="1",
        max_qty="1000000",
        multiplier="100",
        expiry=EXPIRY,
    ),
    "BTC-27MAR26-70000-C": dict(
        kind="option",
        base="BTC",
        quote="USD",
        settle="BTC",
        tick_size="0.0001",
        lot_size="0.1",
        min_qty="0.1",
        max_qty="10000",
        expiry=EXPIRY,
        option_kind="call",
        strike="70000",
    ),
    "BTC-27MAR26-60000-P": dict(
        kind="option",
        base="BTC",
        quote="USD",
        settle="BTC",
        tick_size="0.0001",
        lot_size="0.1",
        min_qty="0.1",
        max_qty="10000",
        expiry=EXPIRY,
        option_kind="put",
        strike="60000",
    ),
    "ETHUSDC-27MAR26-3000-C": dict(
        kind="option",
        base="ETH",
        quote="USDT",
        settle="USDT",
        tick_size="0.1",
        lot_size="0.01",
        min_qty="0.01",
        max_qty="10000",
        expiry=EXPIRY,
        option_kind="call",
        strike="3000",
    ),
}


class Log:
    """Builds a gap-free event log; ``make(EventType, **fields)`` appends and returns one."""

    def __init__(self, start_seq: int = 1, ts: int = T0) -> None:
        self.seq = start_seq
        self.ts = ts
        self.events: list[Event] = []

    def make(self, event_type: type[Event], /, *, ts: int | None = None, **fields: Any) -> Event:
        self.ts = self.ts + 1000 if ts is None else ts
        event = event_type(seq=self.seq, id=f"e{self.seq}", ts=self.ts, **fields)
        self.seq += 1
        self.events.append(event)
        return event

    def assets(self, **scales: int) -> None:
        for code, scale in (scales or ASSETS).items():
            self.make(AssetListed, asset=code, scale=scale)

    def listing(self, symbol: str, **overrides: Any) -> Event:
        return self.make(InstrumentListed, symbol=symbol, **{**LISTINGS[symbol], **overrides})

    def account(self, account: str, mode: str = "one_way") -> Event:
        return self.make(AccountOpened, account=account, position_mode=mode)

    def deposit(self, account: str, asset: str, amount: str) -> Event:
        return self.make(Deposit, account=account, asset=asset, amount=amount)

    def isolated(self, account: str, symbol: str) -> Event:
        return self.make(SetMarginMode, account=account, symbol=symbol, mode="isolated")

    def fill(
        self,
        symbol: str,
        price: str,
        qty: str,
        *,
        buyer: str,
        seller: str,
        taker_side: str = "buy",
        maker_fee_rate: str = "0",
        taker_fee_rate: str = "0",
        **sides: str,
    ) -> Event:
        return self.make(
            Fill,
            symbol=symbol,
            price=price,
            qty=qty,
            buyer=buyer,
            seller=seller,
            taker_side=taker_side,
            maker_fee_rate=maker_fee_rate,
            taker_fee_rate=taker_fee_rate,
            **sides,
        )


def exchange(*symbols: str, accounts: dict[str, dict[str, str]] | None = None) -> Log:
    """A log listing every asset, the given instruments, and funded accounts.

    ``accounts`` maps an account id to its deposits, e.g. ``{"alice": {"USDT": "1000"}}``.
    """
    log = Log()
    log.assets()
    for symbol in symbols:
        log.listing(symbol)
    for account, deposits in (accounts or {}).items():
        log.account(account)
        for asset, amount in deposits.items():
            log.deposit(account, asset, amount)
    return log


def run(events: list[Event], engine: Engine | None = None) -> tuple[Engine, list[Output]]:
    """Feed events to an engine (a fresh default one if None); return it and all outputs."""
    engine = Engine() if engine is None else engine
    outputs: list[Output] = []
    for event in events:
        outputs.extend(engine.process(event))
    return engine, outputs


def balance(engine: Engine, account: str, asset: str) -> str:
    """Free balance as a decimal string (``"0"`` when the account never held the asset)."""
    from fengkong.model.fixed import format_units

    ledger = engine.component("ledger")
    held = ledger.accounts[account].balances.get(asset)
    return format_units(held.free if held is not None else 0, ledger.assets[asset].scale)


def position(engine: Engine, account: str, symbol: str, side: str = "both") -> Any:
    """The account's position record, or None."""
    from fengkong.model.enums import PositionSide

    ledger = engine.component("ledger")
    return ledger.accounts[account].positions.get((symbol, PositionSide(side)))


def busy_log(fills: int, *, accounts: int = 100, seed: int = 7) -> list[Event]:
    """A realistic trading log: listings, funded accounts, then ``fills`` fills on a linear
    and an inverse perpetual (a price random walk on the tick, opens, partial closes and
    flips, maker/taker fees) with a funding settlement every 5,000 fills. Deterministic for
    a seed; every event is accepted by the core."""
    import random

    rng = random.Random(seed)
    log = exchange("BTCUSDT-PERP", "BTCUSD-PERP")
    names = [f"acct{i:05d}" for i in range(accounts)]
    for name in names:
        log.account(name)
        log.deposit(name, "USDT", "1000000")
        log.deposit(name, "BTC", "100")
    linear_ticks, inverse_ticks = 600_000, 600_000
    for n in range(fills):
        buyer, seller = rng.sample(names, 2)
        taker = "buy" if rng.random() < 0.5 else "sell"
        if n % 4 == 3:
            inverse_ticks = max(10_000, inverse_ticks + rng.randint(-30, 30))
            price = f"{inverse_ticks // 10}.{inverse_ticks % 10}"
            log.fill(
                "BTCUSD-PERP",
                price,
                str(rng.randint(1, 500)),
                buyer=buyer,
                seller=seller,
                taker_side=taker,
                maker_fee_rate="0.0001",
                taker_fee_rate="0.0005",
            )
        else:
            linear_ticks = max(10_000, linear_ticks + rng.randint(-30, 30))
            price = f"{linear_ticks // 10}.{linear_ticks % 10}"
            qty = rng.randint(1, 2000)
            log.fill(
                "BTCUSDT-PERP",
                price,
                f"{qty // 1000}.{qty % 1000:03d}",
                buyer=buyer,
                seller=seller,
                taker_side=taker,
                maker_fee_rate="0.0002",
                taker_fee_rate="0.0004",
            )
        if n % 5000 == 4999:
            from fengkong.model.events import FundingPayment

            log.make(
                FundingPayment,
                symbol="BTCUSDT-PERP",
                rate="0.0001",
                mark_price=f"{linear_ticks // 10}.{linear_ticks % 10}",
            )
    return log.events


# --- pre-trade gate (appended for tests/gate and benchmarks/bench_gate.py) -------------------

BTCUSDT_TIERS_2021 = BTCUSDT_2021
"""Binance BTCUSDT brackets of 2021-03-18 (margin-mechanics.md §1.1): floor, cap, max
leverage, MMR; the maintenance amounts are derived. One table, in tests/margin/tables.py."""

STALE_AFTER_MS = 600_000


def gated_engine() -> Engine:
    """The embedded default engine (ledger, market, gate, rules)."""
    return Engine()


def priced(
    log: Log, symbol: str, price: str, *, sources: int = 3, perpetual: bool | None = None
) -> None:
    """Configure an index of ``sources`` equal quotes at ``price`` and a mark for ``symbol``
    (``perpetual`` defaults to the kind of its standard listing)."""
    from fengkong.market.events import (
        IndexConfigured,
        IndexConstituent,
        MarkConfigured,
        PerpetualFunding,
        SourcePrice,
    )

    index = f"{symbol}-IX"
    names = [f"src{i}" for i in range(sources)]
    log.make(
        IndexConfigured,
        index=index,
        price_scale=2,
        constituents=[IndexConstituent(n, "1") for n in names],
        rule="cap",
        limit="0.03",
        stale_after_ms=STALE_AFTER_MS,
        min_sources=2,
    )
    for name in names:
        log.make(SourcePrice, source=name, symbol=index, price=price, time=log.ts + 1000)
    if perpetual is None:
        perpetual = LISTINGS[symbol]["kind"].endswith("perpetual")
    log.make(
        MarkConfigured,
        symbol=symbol,
        index=index,
        funding=PerpetualFunding() if perpetual else None,
    )


def gate_config(log: Log, symbol: str, **overrides: Any) -> Event:
    from fengkong.gate.events import GateInstrumentConfigured, TierRow

    tiers = []
    if LISTINGS.get(symbol, {}).get("kind") != "spot":
        tiers = [
            TierRow(floor=f, cap=c, max_leverage=lev, mmr=m) for f, c, lev, m in BTCUSDT_TIERS_2021
        ]
    return log.make(GateInstrumentConfigured, symbol=symbol, tiers=tiers, **overrides)


def order(
    log: Log,
    order_id: str,
    account: str,
    symbol: str,
    side: str,
    qty: str,
    price: str | None = None,
    *,
    action: str = "new",
    **fields: Any,
) -> Event:
    from fengkong.gate.events import OrderRequest

    if price is None and "order_type" not in fields:
        fields["order_type"] = "market"
        fields.setdefault("time_in_force", "ioc")
    return log.make(
        OrderRequest,
        action=action,
        order_id=order_id,
        account=account,
        symbol=symbol,
        side=side,
        qty=qty,
        price=price,
        **fields,
    )


def gated_exchange(
    prices: dict[str, str], accounts: dict[str, dict[str, str]] | None = None
) -> Log:
    """``exchange()`` plus, for each symbol, an index and mark at its price and gate
    parameters (perpetuals: the 2021 BTCUSDT tiers)."""
    log = exchange(*prices, accounts=accounts)
    for symbol, price in prices.items():
        priced(log, symbol, price)
        gate_config(log, symbol)
    return log
