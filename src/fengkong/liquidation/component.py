"""The liquidation engine: screen on every mark move, confirm exactly, liquidate in stages.

An engine component after the ledger, the market and the gate. On every event that moves a
mark (``SourcePrice``, ``BookTop``, ``MarkConfigured``, ``IndexConfigured``) it revalues the
holders of the moved instruments on the columnar book (:class:`~fengkong.liquidation.screen.
Screener`, numba, incrementally). An event that changes an account's money (fills, transfers,
funding, settlement) only marks the account: the marked accounts are synced into the book and
revalued at the next price event (every account once after the book is rebuilt), so a fill
costs the engine a set insertion; the venue's liquidation fills are screened at once. Each
flagged
account is re-checked with the exact integer models (:func:`~fengkong.liquidation.exact.
account_breaches`); a confirmed breach enters the **queue**, which is worked worst margin
first (``equity / maintenance`` ascending; beyond the tier table first), at most
``max_per_tick`` accounts per event, the rest left queued (:class:`LiquidationDeferred`), so a
crash never stalls the engine. Marks that are missing or stale are not acted on (fail closed:
nothing is liquidated on a price the market does not vouch for).

Stages per account (margin-mechanics.md §1.4, §4.1, §7; exact decisions in
:mod:`fengkong.liquidation.staging`):

1. its open orders are cancelled and their reservations released (the gate); re-check;
2. per breached margin group, the smallest step down the tier table that restores it, taken
   over at the mark with the clearance fee to the insurance fund (when ``partial``);
3. otherwise every position of the group is taken over by ``sys:liquidation`` at its
   bankruptcy price (:func:`fengkong.liquidation.settle.takeover`).

Every taken-over quantity becomes a :class:`LiquidationOrder` to the venue, limited to the
worst price the fund can pay for (its balance less what the orders already out may cost).
The venue's :class:`LiquidationFill` closes the clearing position (gain to the fund, loss from
it); at :class:`LiquidationOrderDone` what is left is auto-deleveraged against the opposite
positions in ADL order at the takeover price, or, when ``adl`` is off or nobody is left to
deleverage, re-sent without a limit with its loss beyond the fund socialized and reported.

Every movement of the fund is an :class:`InsuranceFundChanged` output and an entry of the
fund's history, part of the component's state. The columnar book is derived from the ledger
(rebuilt on restore or when listings and tier tables change) and is not part of the state.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

import msgspec
import numpy as np

from fengkong.engine.component import RejectError
from fengkong.gate.events import GateInstrumentConfigured
from fengkong.ledger.contracts import RATE_SCALE
from fengkong.ledger.state import INSURANCE, LIQUIDATION, SYSTEM_PREFIX
from fengkong.liquidation.adl import adl_queue, instrument_ranks
from fengkong.liquidation.book import LEG_CODES, PositionBook
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
from fengkong.liquidation.exact import Breach, account_breaches
from fengkong.liquidation.instruments import SCREENED_KINDS, MissingMarkError
from fengkong.liquidation.screen import Screener
from fengkong.liquidation.settle import (
    FundRecord,
    auto_deleverage,
    close_clearing_position,
    takeover,
)
from fengkong.liquidation.spot import asset_prices, liquidate_spot_margin, liquidation_candidates
from fengkong.liquidation.staging import (
    GroupPosition,
    MarginGroup,
    affordable_limit,
    bankruptcy_price,
    margin_group,
    step_down,
)
from fengkong.margin.contract import unrealized_pnl
from fengkong.margin.tiers import TierTable
from fengkong.market.events import BookTop, FundingDue, IndexConfigured, MarkConfigured, SourcePrice
from fengkong.model.enums import MarginMode, PositionSide, Side
from fengkong.model.events import (
    Deposit,
    Fill,
    FundingPayment,
    InstrumentListed,
    InstrumentParamsChanged,
    MarginTransfer,
    Output,
    RejectReason,
    Settlement,
    Transfer,
    Withdrawal,
)
from fengkong.model.fixed import FixedPointError, parse_units

__all__ = ["ClearingOrder", "LiquidationComponent"]

_SIDE_OF_LEG = {code: side for side, code in LEG_CODES.items()}
_SCORE_TIE = 1e-9  # relative: float scores this close are treated as tied (exact re-rank)


class ClearingOrder(msgspec.Struct, gc=False):
    """A liquidation order out at the venue: ``qty`` contracts (> 0) of the clearing account's
    ``side`` leg left to close, taken over at ``reference``, no worse than ``limit`` (None: no
    limit); ``committed`` the loss the fund has set aside for it."""

    symbol: str
    side: PositionSide
    qty: int
    reference: int
    limit: int | None
    committed: int
    socializing: bool = False


def _reject(reason: RejectReason, field: str, value: object, message: str = "") -> RejectError:
    return RejectError(reason, field, value, message)


class LiquidationComponent:
    """Owns LiquidationConfigured, LiquidationFill, LiquidationOrderDone (module docstring)."""

    name = "liquidation"

    def __init__(self, ledger: Any, market: Any, gate: Any) -> None:
        self.ledger = ledger
        self.market = market
        self.gate = gate
        self._configure(LiquidationConfigured(seq=0, id="default", ts=0))
        self.marks: dict[str, int] = {}  # the marks the book was last screened at
        self.queue: dict[str, tuple[int, int | None]] = {}  # account -> (equity, maintenance)
        self.orders: dict[str, ClearingOrder] = {}
        self.history: list[tuple[int, str, str, int, int]] = []  # seq, asset, reason, amt, bal
        self._heap: list[tuple[int, Fraction, str]] = []  # the queue's order, lazily pruned
        self._book: PositionBook | None = None
        self._screener: Screener | None = None
        self._tables: dict[str, TierTable] = {}
        self._ids = (0, 0)  # (seq, orders sent by that event): order ids from event data
        self._dirty: set[str] = set()  # touched by money events since the last flush
        self._fresh = False

    # --- protocol -------------------------------------------------------------------------

    def handlers(self) -> dict[type, Any]:
        return {
            LiquidationConfigured: self._on_configured,
            LiquidationFill: self._on_fill,
            LiquidationOrderDone: self._on_done,
        }

    def observers(self) -> dict[type, Any]:
        prices = dict.fromkeys(
            (SourcePrice, BookTop, MarkConfigured, IndexConfigured), self._on_price
        )
        money = dict.fromkeys((Fill, Deposit, Withdrawal, Transfer, MarginTransfer), self._on_money)
        holders = dict.fromkeys((FundingDue, FundingPayment, Settlement), self._on_holders)
        listing = dict.fromkeys(
            (InstrumentListed, InstrumentParamsChanged, GateInstrumentConfigured), self._on_listing
        )
        return {**prices, **money, **holders, **listing}

    def canonical_state(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "marks": sorted([s, m] for s, m in self.marks.items()),
            "queue": sorted([a, e, m] for a, (e, m) in self.queue.items()),
            "orders": [
                [
                    oid,
                    o.symbol,
                    o.side.value,
                    o.qty,
                    o.reference,
                    o.limit,
                    o.committed,
                    o.socializing,
                ]
                for oid, o in sorted(self.orders.items())
            ],
            "history": [list(entry) for entry in self.history],
        }

    def restore_state(self, data: dict[str, Any]) -> None:
        self._configure(msgspec.convert(data["config"], LiquidationConfigured))
        self.marks = {s: m for s, m in data["marks"]}
        self.queue = {}
        self._heap = []
        for account, equity, maintenance in data["queue"]:
            self._enqueue(account, (equity, maintenance))
        self.orders = {
            oid: ClearingOrder(symbol, PositionSide(side), qty, reference, limit, committed, soc)
            for oid, symbol, side, qty, reference, limit, committed, soc in data["orders"]
        }
        self.history = [tuple(entry) for entry in data["history"]]
        self._book = self._screener = None

    # --- queries ----------------------------------------------------------------------------

    def tables(self) -> dict[str, TierTable]:
        """The tier table of every screened instrument the gate has one for."""
        self._ensure_book()
        return self._tables

    def _gate_tables(self) -> dict[str, TierTable]:
        found = {}
        for symbol, rules in self.gate.rules.items():
            instrument = self.ledger.instruments.get(symbol)
            kind = None if instrument is None else instrument.kind
            if rules.tiers is not None and kind in SCREENED_KINDS:
                found[symbol] = rules.tiers
        return found

    def fund_balance(self, asset: str) -> int:
        balance = self.ledger.accounts[INSURANCE].balances.get(asset)
        return 0 if balance is None else balance.total

    def adl_lights(self, symbol: str) -> dict[tuple[str, PositionSide], int]:
        """The ADL indicator (1–5) of every position in ``symbol`` at the current marks."""
        book, screener = self._synced()
        i = book.instruments.index.get(symbol)
        if i is None:
            return {}
        ranks = instrument_ranks(screener, symbol)
        return {
            (book.account_ids[a], _SIDE_OF_LEG[int(leg)]): int(light)
            for a, leg, light in zip(ranks.accounts, ranks.legs, ranks.lights, strict=True)
        }

    @property
    def book(self) -> PositionBook:
        """The columnar book, in step with the ledger."""
        return self._synced()[0]

    @property
    def screener(self) -> Screener:
        return self._synced()[1]

    def _synced(self) -> tuple[PositionBook, Screener]:
        """The book with the touched accounts synced, for a query: they stay marked, so the
        next event's flush still screens them (a query changes no decision)."""
        book, screener = self._ensure_book()
        for account_id in sorted(self._dirty):
            if not account_id.startswith(SYSTEM_PREFIX) and account_id in self.ledger.accounts:
                book.sync_account(self.ledger, account_id)
        return book, screener

    # --- handlers ---------------------------------------------------------------------------

    def _on_configured(self, event: LiquidationConfigured) -> list[Output]:
        if event.max_per_tick < 1:
            raise _reject(RejectReason.INVALID_PARAMETER, "max_per_tick", event.max_per_tick)
        _rates(event)  # validates the rates
        self._configure(event)
        return []

    def _configure(self, config: LiquidationConfigured) -> None:
        self.config = config
        self.clearance_rate, self.partial_fee_rate, self.fund_slippage = _rates(config)
        self._exempt = frozenset(config.exempt)

    def _on_fill(self, event: LiquidationFill) -> list[Output]:
        order = self.orders.get(event.order_id)
        if order is None:
            raise _reject(RejectReason.NOT_APPLICABLE, "order_id", event.order_id, "no such order")
        instrument = self.ledger.instruments[order.symbol]
        price = self._units(event.price, instrument.price_scale, "price")
        qty = self._units(event.qty, instrument.qty_scale, "qty")
        if price % instrument.tick_size:
            raise _reject(RejectReason.PRICE_OFF_TICK, "price", event.price)
        if qty % instrument.lot_size:
            raise _reject(RejectReason.QTY_OFF_LOT, "qty", event.qty)
        if qty > order.qty:
            raise _reject(RejectReason.CLOSE_EXCEEDS_POSITION, "qty", event.qty, "the remainder")
        selling = order.side is PositionSide.LONG
        if order.limit is not None and (price < order.limit if selling else price > order.limit):
            raise _reject(RejectReason.INVALID_PARAMETER, "price", event.price, "beyond the limit")
        if event.counterparty.startswith(SYSTEM_PREFIX):
            raise _reject(RejectReason.INVALID_PARAMETER, "counterparty", event.counterparty)
        closed = close_clearing_position(
            self.ledger, order.symbol, order.side, price, qty,
            counterparty=event.counterparty, counterparty_side=event.counterparty_side,
            seq=event.seq, event_id=event.id,
        )  # fmt: skip
        outputs: list[Output] = []
        self._record(event, closed.history, outputs)
        if closed.shortfall:
            settle = instrument.settle
            outputs.append(self._socialized(event, order.symbol, settle, closed.shortfall))
        order.qty -= qty
        order.committed = min(order.committed, self._worst_loss(order))
        self._settle_and_screen(event, [event.counterparty], outputs)
        return outputs

    def _on_done(self, event: LiquidationOrderDone) -> list[Output]:
        order = self.orders.get(event.order_id)
        if order is None:
            raise _reject(RejectReason.NOT_APPLICABLE, "order_id", event.order_id, "no such order")
        del self.orders[event.order_id]
        outputs: list[Output] = []
        remaining = order.qty
        touched: list[str] = []
        if remaining and self.config.adl and not order.socializing:
            remaining = self._deleverage(event, order, touched, outputs)
        if remaining and not order.socializing:  # once; later, at the next mark of the symbol
            self._send(event, order.symbol, order.side, outputs, socializing=True)
        self._settle_and_screen(event, touched, outputs)
        return outputs

    # --- observers --------------------------------------------------------------------------

    def _on_price(self, event: Any) -> list[Output] | None:
        if isinstance(event, SourcePrice):
            symbols = self.market.marks_of(event.symbol)
        elif isinstance(event, IndexConfigured):
            symbols = self.market.marks_of(event.index)
        else:
            symbols = [event.symbol]
        moved = []
        for symbol in symbols:
            mark = self.market.mark_price(symbol)
            if mark is not None and mark != self.marks.get(symbol):
                moved.append((symbol, mark))
        if not (moved or self.queue or self._dirty or self._fresh):
            return None
        return self._tick(event, moved)

    def _on_money(self, event: Any) -> None:
        """Mark the accounts a money event touched; they are synced into the book and
        screened at the next mark tick (a fill costs the engine a set insertion here)."""
        if isinstance(event, Fill):
            self._dirty.update((event.buyer, event.seller))
        elif isinstance(event, Transfer):
            self._dirty.update((event.from_account, event.to_account))
        else:
            self._dirty.add(event.account)

    def _on_holders(self, event: Any) -> None:
        book, _screener = self._ensure_book()
        i = book.instruments.index.get(event.symbol)
        if i is not None:
            self._dirty.update(book.account_ids[a] for a in book.holder_accounts(i).tolist())

    def _on_listing(self, _event: Any) -> None:
        self._book = self._screener = None

    # --- screening --------------------------------------------------------------------------

    def _ensure_book(self) -> tuple[PositionBook, Screener]:
        """The columnar book, built from the ledger when missing (no screening happens here:
        only the accounts an event touches are screened, on a fresh book or not alike)."""
        if self._book is None or self._screener is None:
            tables = self._gate_tables()
            book = PositionBook()
            for symbol in sorted(tables):
                instrument = self.ledger.instruments[symbol]
                settle_scale = self.ledger.assets[instrument.settle].scale
                book.add_instrument(instrument, settle_scale, tables[symbol].tiers)
            accounts = self.ledger.accounts.values()
            book.load([a for a in accounts if not a.id.startswith(SYSTEM_PREFIX)])
            for symbol, mark in sorted(self.marks.items()):
                if symbol in book.instruments.index:
                    book.instruments.set_mark(symbol, mark)
            self._book, self._screener, self._tables = book, Screener(book), tables
            self._fresh = True  # the next flush revalues every account
        return self._book, self._screener

    def _revalue(self, accounts: np.ndarray) -> np.ndarray:
        """Screen ``accounts`` (book indices); those holding an unmarked instrument are left
        out (nothing is decided without a mark)."""
        book, screener = self._ensure_book()
        try:
            return screener.revalue(accounts)
        except MissingMarkError:
            marks = book.instruments.marks
            usable = [
                a for a in accounts.tolist()
                if all(np.isfinite(marks[book.inst[s]]) for s in book.slots_of(a))
            ]  # fmt: skip
            return screener.revalue(np.array(usable, dtype=np.int64))

    def _tick(self, event: Any, moved: list[tuple[str, int]]) -> list[Output] | None:
        book, screener = self._ensure_book()
        flagged: list[np.ndarray] = [self._flush()]
        for symbol, mark in moved:
            self.marks[symbol] = mark
            i = book.instruments.index.get(symbol)
            if i is None:
                continue
            try:  # incremental: only this instrument's positions move
                flagged.append(screener.tick_instrument(symbol, mark))
            except MissingMarkError:  # a holder holds an unmarked instrument: per account
                book.instruments.set_mark(symbol, mark)
                flagged.append(self._revalue(book.holder_accounts(i)))
        outputs: list[Output] = []
        self._confirm(np.unique(np.concatenate(flagged)))
        if self.queue:
            self._work_queue(event, outputs)
        for symbol, _mark in moved:
            self._resend_unplaced(event, symbol, outputs)
        if moved and self.ledger.loans.by_account and self.ledger.loans.settings is not None:
            self._spot_margin(event, outputs)
        return outputs or None

    def _spot_margin(self, event: Any, outputs: list[Output]) -> None:
        """Spot cross margin (margin-mechanics.md §3): every indebted account at or below the
        liquidation level at the marks (exact, worst first, at most ``max_per_tick``) has its
        orders cancelled, then collateral sold and debt bought back until the margin-call
        level is restored (:func:`fengkong.liquidation.spot.liquidate_spot_margin`). The
        insurance fund is the buyer of the collateral at the mark, as it is the taker of
        bankrupt positions; the liquidation fee (``clearance_rate``) goes to it. A refusal
        (the fund cannot pay) leaves the account for the next mark."""
        prices = asset_prices(self.ledger, self.market, event.ts)
        below, _unpriced = liquidation_candidates(self.ledger, prices, event.ts)
        fee_rate = Fraction(self.clearance_rate, 10**RATE_SCALE)
        for account_id, level in below[: self.config.max_per_tick]:
            if account_id in self._exempt:
                continue
            cancelled = self.gate.cancel_account_orders(account_id)
            self.gate.positions_changed(account_id)
            if cancelled:
                outputs.append(
                    LiquidationOrdersCancelled(
                        seq=event.seq, id=event.id, account=account_id, order_ids=cancelled
                    )
                )
            fund = self.ledger.accounts[INSURANCE].balances
            before = {asset: balance.total for asset, balance in fund.items()}
            try:
                done = liquidate_spot_margin(
                    self.ledger, account_id, prices, event.ts, seq=event.seq,
                    event_id=event.id, fee_rate=fee_rate, counterparty=INSURANCE,
                )  # fmt: skip
            except RejectError:
                continue
            outputs.append(
                SpotMarginLiquidated(
                    seq=event.seq, id=event.id, account=account_id,
                    level_before=str(level), level_after=str(done.level_after),
                    complete=done.complete,
                )
            )  # fmt: skip
            outputs.extend(done.outputs)
            self._record(event, _spot_fund_records(self.ledger, before, done.fees), outputs)

    def _resend_unplaced(self, event: Any, symbol: str, outputs: list[Output]) -> None:
        """On a new mark, send again (without a limit) the clearing legs of ``symbol`` that a
        finished order left unplaced, neither the venue nor ADL having taken them."""
        clearing = self.ledger.accounts[LIQUIDATION].positions
        for side in (PositionSide.LONG, PositionSide.SHORT):
            leg = clearing.get((symbol, side))
            if leg is None or not leg.qty:
                continue
            if not any(o.symbol == symbol and o.side is side for o in self.orders.values()):
                self._send(event, symbol, side, outputs, socializing=True)

    def _flush(self) -> np.ndarray:
        """Sync the touched accounts into the book (all of them once after a rebuild) and
        revalue them; return the flagged ones."""
        book, _screener = self._ensure_book()
        if self._fresh:
            self._fresh = False
            self._dirty.clear()
            return self._revalue(np.arange(book.accounts, dtype=np.int64))
        if not self._dirty:
            return np.zeros(0, dtype=np.int64)
        indices = []
        for account_id in sorted(self._dirty):
            if account_id.startswith(SYSTEM_PREFIX) or account_id not in self.ledger.accounts:
                continue
            book.sync_account(self.ledger, account_id)
            indices.append(book.account_index[account_id])
        self._dirty.clear()
        return self._revalue(np.array(sorted(indices), dtype=np.int64))

    def _confirm(self, flagged: np.ndarray) -> None:
        book = self._book
        assert book is not None
        tables = self.tables()
        for a in flagged.tolist():
            account_id = book.account_ids[a]
            if account_id in self.queue or account_id in self._exempt:
                continue
            breaches = self._breaches(account_id, tables)
            if breaches:
                self._enqueue(account_id, _worst(breaches))

    def _enqueue(self, account_id: str, figures: tuple[int, int | None]) -> None:
        self.queue[account_id] = figures
        heapq.heappush(self._heap, _priority((account_id, figures)))

    def _breaches(self, account_id: str, tables: Mapping[str, TierTable]) -> list[Breach]:
        try:
            return account_breaches(self.ledger, account_id, tables, self.marks)
        except (MissingMarkError, KeyError):
            return []  # an instrument without a usable mark or table: not decidable, not acted on

    # --- liquidation ------------------------------------------------------------------------

    def _work_queue(self, event: Any, outputs: list[Output]) -> None:
        budget = self.config.max_per_tick
        tables = self.tables()
        while budget and self._heap:
            entry = heapq.heappop(self._heap)
            account_id = entry[2]
            figures = self.queue.get(account_id)
            if figures is None or _priority((account_id, figures)) != entry:
                continue  # left the queue, or re-queued with newer figures
            del self.queue[account_id]
            budget -= 1
            self._liquidate(event, account_id, tables, outputs)
        if self.queue:
            outputs.append(LiquidationDeferred(seq=event.seq, id=event.id, queued=len(self.queue)))

    def _liquidate(
        self, event: Any, account_id: str, tables: Mapping[str, TierTable], outputs: list[Output]
    ) -> None:
        breaches = self._breaches(account_id, tables)
        if not breaches:
            return  # recovered since it was queued
        for breach in breaches:
            outputs.append(
                LiquidationTriggered(
                    seq=event.seq, id=event.id, account=account_id, asset=breach.asset,
                    symbol=breach.symbol, side=breach.side, equity=breach.equity,
                    maintenance=breach.maintenance,
                )
            )  # fmt: skip
        cancelled = self.gate.cancel_account_orders(account_id)
        for changed in (account_id, LIQUIDATION):  # the account's positions, the clearing legs
            self.gate.positions_changed(changed)
        if cancelled:
            outputs.append(
                LiquidationOrdersCancelled(
                    seq=event.seq, id=event.id, account=account_id, order_ids=cancelled
                )
            )
            breaches = self._breaches(account_id, tables)
        for breach in breaches:
            isolated = None if breach.symbol is None else (breach.symbol, breach.side)
            group = margin_group(self.ledger, account_id, breach.asset, isolated, tables,
                                 self.marks)  # fmt: skip
            if not group.breached:
                continue
            if self.config.partial:
                group = self._step_down(event, group, tables, outputs)
            if group.breached:
                self._take_over(event, group, tables, outputs)
        self._settle_and_screen(event, [account_id], outputs, work=False)

    def _step_down(
        self, event: Any, group: MarginGroup, tables: Mapping[str, TierTable], outputs: list[Output]
    ) -> MarginGroup:
        plan = step_down(group, self.ledger, tables, self.partial_fee_rate)
        if plan is None:
            return group
        p = plan.position
        done = takeover(
            self.ledger, group.account, p.symbol, p.side, p.mark, self.partial_fee_rate,
            qty=-plan.qty, seq=event.seq, event_id=event.id,
        )  # fmt: skip
        outputs.append(
            PartialLiquidation(
                seq=event.seq, id=event.id, account=group.account, symbol=p.symbol, side=p.side,
                qty=plan.qty, price=p.mark, fee=done.fee, from_bracket=p.bracket or 0,
                to_bracket=plan.to_bracket,
            )
        )  # fmt: skip
        self._record(event, done.history, outputs)
        self._send(event, p.symbol, done.clearing_side, outputs)
        return margin_group(self.ledger, group.account, group.asset, group.isolated, tables,
                            self.marks)  # fmt: skip

    def _take_over(
        self, event: Any, group: MarginGroup, tables: Mapping[str, TierTable], outputs: list[Output]
    ) -> None:
        """Stage 3 in an order that never leaves the wallet short in between: positions in
        profit at their marks (their gains become cash), then the biggest loser at the
        bankruptcy price (it absorbs the group's whole equity), then the other losers at
        their marks (the wallet left covers exactly their losses). Only the last step pays
        the clearance fee, from the dust the tick rounding leaves (the bankruptcy price has
        already given the fund the group's equity); a fee on an earlier step would take the
        cash the later losses need."""
        big = min(group.positions, key=lambda p: (p.upnl, p.symbol, p.side.value))
        gains = [p for p in group.positions if p is not big and p.upnl >= 0]
        losses = [p for p in group.positions if p is not big and p.upnl < 0]
        for p in gains:
            self._take(event, group, p, p.mark, 0, outputs)
        group = margin_group(self.ledger, group.account, group.asset, group.isolated, tables,
                             self.marks)  # fmt: skip
        p = next(q for q in group.positions if (q.symbol, q.side) == (big.symbol, big.side))
        tick = self.ledger.instruments[p.symbol].tick_size
        price = bankruptcy_price(self.ledger.contract_math(p.symbol), tick, p, group.equity)
        self._take(event, group, p, price, 0 if losses else self.clearance_rate, outputs)
        for p in losses:
            self._take(
                event, group, p, p.mark, self.clearance_rate if p is losses[-1] else 0, outputs
            )

    def _take(
        self,
        event: Any,
        group: MarginGroup,
        p: GroupPosition,
        price: int,
        fee_rate: int,
        outputs: list[Output],
    ) -> None:
        done = takeover(
            self.ledger, group.account, p.symbol, p.side, price, fee_rate,
            seq=event.seq, event_id=event.id,
        )  # fmt: skip
        outputs.append(
            PositionTakenOver(
                seq=event.seq, id=event.id, account=group.account, symbol=p.symbol,
                side=p.side, qty=done.qty, price=price, fee=done.fee,
                shortfall=done.shortfall, insurance=done.insurance, socialized=done.socialized,
            )
        )  # fmt: skip
        self._record(event, done.history, outputs)
        if done.socialized:
            outputs.append(self._socialized(event, p.symbol, group.asset, done.socialized))
        self._send(event, p.symbol, done.clearing_side, outputs)

    def _deleverage(
        self, event: Any, order: ClearingOrder, touched: list[str], outputs: list[Output]
    ) -> int:
        """ADL the order's remainder against the opposite side; returns what is left.

        The screen's float scores pick the shortlist — the top of the queue until it covers
        the remainder, with every position tied with the last one — and the shortlist is
        ranked on exact scores (ties by account id), so the accounts deleveraged do not
        depend on the book's layout or the floats' last bits."""
        book, screener = self._ensure_book()
        self._confirm(self._flush())  # the ranks read the book: every account in step
        i = book.instruments.index.get(order.symbol)
        if i is None:
            return order.qty
        ranks = instrument_ranks(screener, order.symbol)
        clearing_long = order.side is PositionSide.LONG
        queue = adl_queue(ranks.scores, ranks.long, side_long=not clearing_long).tolist()
        lights: dict[tuple[str, PositionSide], int] = {}
        shortlist: list[tuple[str, PositionSide]] = []
        covered = 0
        floor = None
        for k in queue:  # the screen's order, until the remainder is covered (ties included)
            score = float(ranks.scores[k])
            if covered >= order.qty and (floor is None or score < floor - _SCORE_TIE * abs(floor)):
                break
            key = (book.account_ids[int(ranks.accounts[k])], _SIDE_OF_LEG[int(ranks.legs[k])])
            shortlist.append(key)
            lights[key] = int(ranks.lights[k])
            position = self.ledger.accounts[key[0]].positions.get((order.symbol, key[1]))
            covered += 0 if position is None else abs(position.qty)
            floor = score
        ranking = sorted(shortlist, key=lambda key: self._exact_score(order.symbol, key))
        result = auto_deleverage(
            self.ledger, order.symbol, order.side, order.reference, order.qty, ranking,
            seq=event.seq, event_id=event.id,
        )  # fmt: skip
        for close in result.closes:
            outputs.append(
                AutoDeleveraged(
                    seq=event.seq, id=event.id, symbol=order.symbol, account=close.account,
                    side=close.side, qty=close.qty, price=close.price, pnl=close.pnl,
                    lights=lights.get((close.account, close.side), 0),
                )
            )  # fmt: skip
            touched.append(close.account)
        self._record(event, result.history, outputs)
        return result.remaining

    # --- orders and the fund ----------------------------------------------------------------

    def _send(
        self,
        event: Any,
        symbol: str,
        side: PositionSide,
        outputs: list[Output],
        *,
        socializing: bool = False,
    ) -> None:
        """Send (or amend: one order per leg) the clearing account's whole ``side`` leg of
        ``symbol`` to the venue, limited to what the fund can pay (module docstring), or
        without a limit when ``socializing``. One order per leg keeps the order's loss the
        leg's own, as the ledger realizes a close against the leg's average entry."""
        leg = self.ledger.accounts[LIQUIDATION].positions.get((symbol, side))
        qty = 0 if leg is None else abs(leg.qty)
        order_id = next((oid for oid, o in self.orders.items()
                         if o.symbol == symbol and o.side is side), None)  # fmt: skip
        if order_id is not None:
            socializing = socializing or self.orders.pop(order_id).socializing
        if leg is None or qty == 0:
            return
        instrument = self.ledger.instruments[symbol]
        math = self.ledger.contract_math(symbol)
        tick = instrument.tick_size
        reference = affordable_limit(math, tick, leg.qty, leg.entry_value, 0)
        limit: int | None = None
        committed = 0
        if not socializing:
            asset = instrument.settle
            out = sum(o.committed for o in self.orders.values()
                      if self.ledger.instruments[o.symbol].settle == asset)  # fmt: skip
            budget = max(0, self.fund_balance(asset) - out)
            limit = affordable_limit(math, tick, leg.qty, leg.entry_value, budget)
            one = 10**RATE_SCALE
            if leg.qty > 0:  # a sell: no lower than the reference less the fund's slippage
                bound = -(-reference * (one - self.fund_slippage) // (one * tick)) * tick
                limit = max(limit, bound)
            else:
                limit = min(limit, reference * (one + self.fund_slippage) // (one * tick) * tick)
            committed = min(budget, max(0, -unrealized_pnl(math, leg.qty, leg.entry_value, limit)))
        if order_id is None:
            seq, sent = self._ids
            self._ids = (event.seq, sent + 1 if seq == event.seq else 1)
            order_id = f"liq-{event.seq}-{self._ids[1]}"
        self.orders[order_id] = ClearingOrder(
            symbol, side, qty, reference, limit, committed, socializing
        )
        outputs.append(
            LiquidationOrder(
                seq=event.seq, id=event.id, order_id=order_id, symbol=symbol,
                side=Side.SELL if leg.qty > 0 else Side.BUY, qty=qty, limit_price=limit,
                reference_price=reference,
            )
        )  # fmt: skip

    def _exact_score(self, symbol: str, key: tuple[str, PositionSide]) -> tuple[Fraction, str, str]:
        """Binance's ADL score of one position, exact, negated for sorting (highest first):
        ``max(0, UP) / max(1, WB) × MM / (WB + UP)`` of its margin group (§1.5)."""
        account_id, side = key
        position = self.ledger.accounts[account_id].positions[(symbol, side)]
        asset = self.ledger.instruments[symbol].settle
        isolated = (symbol, side) if position.margin_mode is MarginMode.ISOLATED else None
        group = margin_group(self.ledger, account_id, asset, isolated, self.tables(), self.marks)
        upnl = next(p.upnl for p in group.positions if (p.symbol, p.side) == (symbol, side))
        one = 10 ** self.ledger.assets[asset].scale
        equity, maintenance = group.equity, group.maintenance or 0
        ratio = Fraction(maintenance, equity) if equity > 0 else Fraction(0)
        score = Fraction(max(0, upnl), max(one, group.wallet)) * ratio
        return (-score, account_id, side.value)

    def _worst_loss(self, order: ClearingOrder) -> int:
        leg = self.ledger.accounts[LIQUIDATION].positions.get((order.symbol, order.side))
        if order.limit is None or leg is None or not leg.qty:
            return 0
        math = self.ledger.contract_math(order.symbol)
        return max(0, -unrealized_pnl(math, leg.qty, leg.entry_value, order.limit))

    def _record(self, event: Any, history: Iterable[FundRecord], outputs: list[Output]) -> None:
        records = list(history)
        if not records:
            return
        balances: dict[str, int] = {}
        for record in reversed(records):  # the balance before this operation's records
            if record.asset not in balances:
                balances[record.asset] = self.fund_balance(record.asset)
            balances[record.asset] -= record.amount
        for record in records:
            balances[record.asset] += record.amount
            balance = balances[record.asset]
            self.history.append((event.seq, record.asset, record.reason.value, record.amount,
                                 balance))  # fmt: skip
            outputs.append(
                InsuranceFundChanged(
                    seq=event.seq, id=event.id, asset=record.asset, reason=record.reason,
                    amount=record.amount, balance=balance,
                )
            )  # fmt: skip

    def _socialized(self, event: Any, symbol: str, asset: str, amount: int) -> SocializedLoss:
        return SocializedLoss(seq=event.seq, id=event.id, symbol=symbol, asset=asset, amount=amount)

    def _settle_and_screen(
        self, event: Any, accounts: Iterable[str], outputs: list[Output], *, work: bool = True
    ) -> None:
        """Re-sync ``accounts`` (and any touched since the last tick) after the ledger moved
        their money; queue new breaches."""
        self._dirty.update(accounts)
        self._confirm(self._flush())
        if work and self.queue:
            self._work_queue(event, outputs)

    @staticmethod
    def _units(text: str, scale: int, field: str) -> int:
        try:
            units = parse_units(text, scale, field=field)
        except FixedPointError as error:
            raise _reject(RejectReason.INVALID_NUMBER, field, text, error.reason) from None
        if units <= 0:
            raise _reject(RejectReason.NON_POSITIVE_AMOUNT, field, text)
        return units


def _spot_fund_records(
    ledger: Any, before: Mapping[str, int], fees: Mapping[str, int]
) -> list[FundRecord]:
    """The fund's movements of one spot-margin liquidation: its fee income, and the rest of
    each asset's change (collateral bought at the mark, debt paid for it, bad debt covered)."""
    records = []
    balances = ledger.accounts[INSURANCE].balances
    for asset in sorted(set(before) | set(balances)):
        change = (balances[asset].total if asset in balances else 0) - before.get(asset, 0)
        fee = fees.get(asset, 0)
        if fee:
            records.append(FundRecord(FundReason.CLEARANCE_FEE, asset, fee))
        if change - fee:
            records.append(FundRecord(FundReason.SPOT_LIQUIDATION, asset, change - fee))
    return records


def _rates(config: LiquidationConfigured) -> tuple[int, int, int]:
    """``(clearance_rate, partial_fee_rate, fund_slippage)`` at ``RATE_SCALE``; each in
    [0, 1)."""
    rates = []
    for field in ("clearance_rate", "partial_fee_rate", "fund_slippage"):
        text = getattr(config, field)
        try:
            rate = parse_units(text, RATE_SCALE, field=field)
        except FixedPointError as error:
            raise _reject(RejectReason.INVALID_NUMBER, field, text, error.reason) from None
        if not 0 <= rate < 10**RATE_SCALE:
            raise _reject(RejectReason.INVALID_PARAMETER, field, text, "a fraction in [0, 1)")
        rates.append(rate)
    return rates[0], rates[1], rates[2]


def _worst(breaches: list[Breach]) -> tuple[int, int | None]:
    """The account's worst group as ``(equity, maintenance)`` (None: beyond the table)."""
    return min(((b.equity, b.maintenance) for b in breaches), key=lambda f: _ratio_key(*f))


def _ratio_key(equity: int, maintenance: int | None) -> tuple[int, Fraction]:
    if maintenance is None:
        return (0, Fraction(0))
    if maintenance <= 0:
        return (1, Fraction(equity))
    return (1, Fraction(equity, maintenance))


def _priority(item: tuple[str, tuple[int, int | None]]) -> tuple[int, Fraction, str]:
    account, (equity, maintenance) = item
    return (*_ratio_key(equity, maintenance), account)
