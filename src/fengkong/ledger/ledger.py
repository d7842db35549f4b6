"""The ledger: balances, positions and every cash movement, exact to the last unit.

Conservation: every movement is a transfer between two accounts of the same asset, so the
sum over all accounts (system accounts included) of ``free + locked + isolated margin``
changes only by deposits and withdrawals. Realized PnL, funding and expiry cash flow through
``sys:settlement`` (see :mod:`fengkong.ledger.state`); fees through ``sys:fees``; bad debt
is drawn from ``sys:insurance`` and, beyond it, left with ``sys:settlement`` and reported.

Every handler validates completely before its first mutation and raises
:class:`~fengkong.engine.component.RejectError` otherwise, so a refused event changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import msgspec

from fengkong.engine.component import RejectError
from fengkong.ledger.contracts import PARSE_CACHE_LIMIT, RATE_SCALE, ContractMath
from fengkong.ledger.listing import instrument_from_listing, instrument_with_changes, parse_number
from fengkong.ledger.loans import LoanBook, transfer_out_refusal
from fengkong.ledger.state import (
    FEES,
    INSURANCE,
    SETTLEMENT,
    SYSTEM_ACCOUNTS,
    SYSTEM_PREFIX,
    Account,
    Balance,
    Position,
)
from fengkong.model.assets import MAX_SCALE, Asset
from fengkong.model.enums import (
    InstrumentKind,
    InstrumentStatus,
    MarginMode,
    OptionKind,
    PositionMode,
    PositionSide,
    Side,
)
from fengkong.model.events import (
    AccountOpened,
    AssetListed,
    BadDebt,
    Deposit,
    Fill,
    FundingPayment,
    FundingSettled,
    InstrumentListed,
    InstrumentParamsChanged,
    InstrumentSettled,
    MarginTransfer,
    Output,
    RejectReason,
    SetMarginMode,
    SetPositionMode,
    Settlement,
    Transfer,
    Withdrawal,
)
from fengkong.model.fixed import CHARGE, PAYOUT, div_round
from fengkong.model.instruments import DATED_KINDS, Instrument

__all__ = ["RATE_SCALE", "Ledger"]

MAX_FEE_RATE = 10**RATE_SCALE // 10  # 10 % of notional: anything above is a malformed fill
_RATE_CACHE_LIMIT = 4096

_BUY = Side.BUY
_BOTH = PositionSide.BOTH
_LONG = PositionSide.LONG
_SHORT = PositionSide.SHORT
_CROSS = MarginMode.CROSS
_SIDES = (_BOTH, _LONG, _SHORT)
# enum members as module constants: ``Enum.MEMBER`` is a descriptor lookup (~0.1 µs)
_TRADING = InstrumentStatus.TRADING
_SPOT = InstrumentKind.SPOT
_OPTION = InstrumentKind.OPTION
_HEDGE = PositionMode.HEDGE


def _reject(reason: RejectReason, field: str, value: object, message: str = "") -> RejectError:
    return RejectError(reason, field, value, message)


_LegT = tuple[
    Account,
    tuple[str, PositionSide],
    Position | None,
    MarginMode,
    int,
    int,
    int,
    int,
    int,
    int,
    Balance | None,
]
"""One party's side of a derivative fill: (account, position key, position or None, margin
mode, new qty, new entry value, realized PnL, cash to the margin wallet, fee (> 0 charged,
< 0 rebate), wallet after the fill, settlement-asset balance or None). Cash is the PnL, or an
option's premium."""
_ACCOUNT, _MODE, _CASH, _WALLET = 0, 3, 7, 9


def _unpaid(leg: _LegT, field: str, settle: str) -> RejectError:
    return _unpaid_by(leg[_MODE], field, leg[_ACCOUNT].id, settle)


def _unpaid_by(mode: MarginMode, field: str, account_id: str, settle: str) -> RejectError:
    reason = (
        RejectReason.INSUFFICIENT_BALANCE
        if mode is _CROSS
        else RejectReason.INSUFFICIENT_ISOLATED_MARGIN
    )
    return _reject(reason, field, account_id, f"cannot pay {settle}")


def _in_account_order(
    holders: dict[tuple[str, PositionSide], Position],
) -> list[tuple[tuple[str, PositionSide], Position]]:
    """``holders``' items sorted by (account, side). Sorting on the key alone lets the sort
    compare the key tuples' strings directly (several times faster than comparing whole
    items, whose first element is itself a tuple); keys are unique, so the order is the same."""
    return sorted(holders.items(), key=itemgetter(0))


class _FillBook:
    """One trading linear or inverse future or perpetual as :meth:`Ledger._on_fill` needs it,
    resolved when it is listed or changed (a change builds a new one): its contract math
    and the constants of its entry-value and fee formulas, the one-way position key, and the
    price and quantity texts already checked against its tick and lot."""

    __slots__ = (
        "both",
        "fee_den",
        "fee_factor",
        "fees",
        "inverse",
        "lot",
        "math",
        "open_den",
        "open_num",
        "prices",
        "qtys",
        "rates",
        "settle",
        "settlement",
        "symbol",
        "tick",
    )

    def __init__(
        self, instrument: Instrument, math: ContractMath, both: tuple[str, PositionSide]
    ) -> None:
        self.symbol = instrument.symbol
        self.settle = instrument.settle
        self.both = both
        self.math = math
        self.inverse = math.inverse
        self.open_num = math.open_num
        self.open_den = math.open_den
        # ContractMath.fee: linear ceil(q x p x open_num x fee_factor x r / fee_den), the
        # entry value times fee_factor x r; inverse ceil(q x fee_factor x r / (p x fee_den))
        if math.inverse:
            self.fee_factor, self.fee_den = math.fee_num, math.fee_den
        else:
            self.fee_factor, self.fee_den = math.value_fee_num, math.value_fee_den
        self.tick = instrument.tick_size
        self.lot = instrument.lot_size
        self.prices: dict[str, int] = {}
        self.qtys: dict[str, int] = {}
        self.rates: dict[tuple[str, str, str], tuple[int, int]] = {}
        """Per (maker rate text, taker rate text, taker side): minus the buyer's and minus
        the seller's rate, times :attr:`fee_factor` (see :meth:`Ledger._fill_fee_rates`)."""
        self.fees: Balance | None = None
        """``sys:fees``' and ``sys:settlement``'s balances of the settlement asset, resolved
        at the first fill (resolving them creates them)."""
        self.settlement: Balance | None = None

    def price(self, text: str) -> int:
        """A fill's price: positive and on the tick, or the fill's refusal."""
        math = self.math
        price = math.parsed_prices.get(text)
        if price is None:
            price = math.remember_price(
                text, parse_number(text, math.price_scale, "price", minimum=1)
            )
        if price % self.tick:
            raise _reject(RejectReason.PRICE_OFF_TICK, "price", text)
        if len(self.prices) >= PARSE_CACHE_LIMIT:
            self.prices.clear()
        self.prices[text] = price
        return price

    def qty(self, text: str) -> int:
        """A fill's quantity: positive and a whole number of lots, or the fill's refusal."""
        math = self.math
        qty = math.parsed_qtys.get(text)
        if qty is None:
            qty = math.remember_qty(text, parse_number(text, math.qty_scale, "qty", minimum=1))
        if qty % self.lot:
            raise _reject(RejectReason.QTY_OFF_LOT, "qty", text)
        if len(self.qtys) >= PARSE_CACHE_LIMIT:
            self.qtys.clear()
        self.qtys[text] = qty
        return qty


def _with_cash(leg: _LegT, cash: int) -> _LegT:
    """An option leg: the premium replaces the PnL as the cash that moves."""
    wallet = leg[_WALLET] - leg[_CASH] + cash
    return (*leg[:_CASH], cash, leg[8], wallet, leg[10])


class Ledger:
    """Engine component owning assets, instruments, accounts, balances and positions."""

    name = "ledger"

    def __init__(self) -> None:
        self.assets: dict[str, Asset] = {}
        self.instruments: dict[str, Instrument] = {}
        self.accounts: dict[str, Account] = {a: Account(id=a) for a in SYSTEM_ACCOUNTS}
        self._books: dict[str, tuple[Instrument, ContractMath]] = {}
        self._fill_books: dict[str, _FillBook] = {}
        self._position_keys: dict[tuple[str, PositionSide], tuple[str, PositionSide]] = {}
        """One tuple object per position key, so that a position lookup matches by identity
        (a dict compares equal keys item by item when they are different tuples)."""
        self._holders: dict[str, dict[tuple[str, PositionSide], Position]] = {}
        self._rates: dict[str, int] = {}
        self._clearing: dict[str, tuple[Balance, Balance]] = {}
        self.open_interest: dict[str, int] = {}
        """Open interest per instrument: the sum of long contracts (every one-way long and
        hedge long leg), kept by every fill and expiry; derived, so not in the snapshot."""
        self.reservations: Callable[[Fill], Sequence[tuple[str, str, int]]] | None = None
        """Hook of the pre-trade gate: for a fill naming gated orders, the exact
        ``(account, asset, amount)`` to move from locked to free so the fill can spend what
        those orders reserved. Applied only if the fill is accepted (see :meth:`_fill_releasing`).
        Not state: the owner re-registers it when it is built."""
        self.loans: LoanBook = LoanBook(self)
        """Spot cross margin: loans from ``sys:lending``, hourly interest, margin level
        (:mod:`fengkong.ledger.loans`); its events are the ledger's."""

    # --- engine component protocol ------------------------------------------------------

    def handlers(self) -> dict[type, Any]:
        return {
            AssetListed: self._on_asset_listed,
            InstrumentListed: self._on_instrument_listed,
            InstrumentParamsChanged: self._on_instrument_params,
            AccountOpened: self._on_account_opened,
            SetPositionMode: self._on_set_position_mode,
            SetMarginMode: self._on_set_margin_mode,
            Deposit: self._on_deposit,
            Withdrawal: self._on_withdrawal,
            Transfer: self._on_transfer,
            MarginTransfer: self._on_margin_transfer,
            Fill: self._on_fill,
            FundingPayment: self._on_funding,
            Settlement: self._on_settlement,
            **self.loans.handlers(),
        }

    def observers(self) -> dict[type, Any]:
        return {}

    def canonical_state(self) -> dict[str, Any]:
        """Whole ledger, sorted; amounts as decimal-digit strings (msgpack ints stop at 64 bits,
        and an inverse entry value at ``settle_scale + 12`` decimals passes that)."""
        accounts = []
        for account_id in sorted(self.accounts):
            account = self.accounts[account_id]
            accounts.append(
                [
                    account_id,
                    account.position_mode.value,
                    sorted([s, m.value] for s, m in account.margin_modes.items()),
                    sorted([a, str(b.free), str(b.locked)] for a, b in account.balances.items()),
                    sorted(
                        [
                            p.symbol,
                            p.side.value,
                            p.margin_mode.value,
                            str(p.qty),
                            str(p.entry_value),
                            str(p.realized_pnl),
                            str(p.isolated_margin),
                        ]
                        for p in account.positions.values()
                    ),
                ]
            )
        state: dict[str, Any] = {
            "assets": sorted([a.code, a.scale] for a in self.assets.values()),
            "instruments": [self.instruments[s] for s in sorted(self.instruments)],
            "accounts": accounts,
        }
        loans = self.loans.canonical_state()
        if loans is not None:  # absent until spot margin is configured (old hashes unchanged)
            state["loans"] = loans
        return state

    def restore_state(self, data: dict[str, Any]) -> None:
        self.__init__()
        for code, scale in data["assets"]:
            self.assets[code] = Asset(code=code, scale=scale)
        for raw in data["instruments"]:
            self._add_instrument(msgspec.convert(raw, Instrument))
        for account_id, mode, margin_modes, balances, positions in data["accounts"]:
            account = Account(id=account_id, position_mode=PositionMode(mode))
            account.margin_modes = {s: MarginMode(m) for s, m in margin_modes}
            account.balances = {a: Balance(int(free), int(locked)) for a, free, locked in balances}
            for symbol, side, margin_mode, qty, value, realized, isolated in positions:
                position = Position(
                    symbol=symbol,
                    side=PositionSide(side),
                    margin_mode=MarginMode(margin_mode),
                    qty=int(qty),
                    entry_value=int(value),
                    realized_pnl=int(realized),
                    isolated_margin=int(isolated),
                )
                self._index_position(account, position)
                if position.qty > 0:
                    self.open_interest[symbol] = self.open_interest.get(symbol, 0) + position.qty
            self.accounts[account_id] = account
        self.loans.restore_state(data.get("loans"))

    # --- queries used by other components and tests --------------------------------------

    def contract_math(self, symbol: str) -> ContractMath:
        return self._books[symbol][1]

    def holders(self, symbol: str) -> dict[tuple[str, PositionSide], Position]:
        """Open positions (and funded isolated buckets) in ``symbol``; the order is the
        opening order, or the account order after a restore: sort before it can matter."""
        return self._holders.get(symbol, {})

    def asset_totals(self) -> dict[str, int]:
        """Sum over all accounts of free + locked + isolated margin, per asset."""
        totals = dict.fromkeys(sorted(self.assets), 0)
        for account in self.accounts.values():
            for asset, balance in account.balances.items():
                totals[asset] += balance.free + balance.locked
            for position in account.positions.values():
                if position.isolated_margin:
                    totals[self.instruments[position.symbol].settle] += position.isolated_margin
        return totals

    # --- reservations (used by the pre-trade gate) ---------------------------------------

    def lock(self, account_id: str, asset: str, amount: int) -> None:
        """Move ``amount`` from free to locked; raises if the free balance is short."""
        balance = self._existing_balance(account_id, asset)
        if amount <= 0 or balance is None or balance.free < amount:
            raise _reject(RejectReason.INSUFFICIENT_BALANCE, "amount", amount, asset)
        balance.free -= amount
        balance.locked += amount

    def unlock(self, account_id: str, asset: str, amount: int) -> None:
        """Move ``amount`` from locked back to free; raises if less is locked."""
        balance = self._existing_balance(account_id, asset)
        if amount <= 0 or balance is None or balance.locked < amount:
            raise _reject(RejectReason.INSUFFICIENT_BALANCE, "amount", amount, asset)
        balance.locked -= amount
        balance.free += amount

    def _existing_balance(self, account_id: str, asset: str) -> Balance | None:
        account = self.accounts.get(account_id)
        return None if account is None else account.balances.get(asset)

    # --- reference data ----------------------------------------------------------------

    def _on_asset_listed(self, event: AssetListed) -> list[Output]:
        if event.asset in self.assets:
            raise _reject(RejectReason.ALREADY_EXISTS, "asset", event.asset)
        if not event.asset or type(event.scale) is not int or not 0 <= event.scale <= MAX_SCALE:
            raise _reject(RejectReason.INVALID_PARAMETER, "scale", event.scale, f"0..{MAX_SCALE}")
        self.assets[event.asset] = Asset(code=event.asset, scale=event.scale)
        return []

    def _on_instrument_listed(self, event: InstrumentListed) -> list[Output]:
        if event.symbol in self.instruments:
            raise _reject(RejectReason.ALREADY_EXISTS, "symbol", event.symbol)
        self._add_instrument(instrument_from_listing(event, self.assets))
        return []

    def _add_instrument(self, instrument: Instrument) -> None:
        math = ContractMath(instrument, self.assets[instrument.settle].scale)
        self.instruments[instrument.symbol] = instrument
        self._books[instrument.symbol] = (instrument, math)
        self._index_fill_book(instrument, math)

    def _set_instrument(self, instrument: Instrument) -> None:
        """Replace a listed instrument's parameters (its scales, hence its math, are fixed)."""
        math = self._books[instrument.symbol][1]
        self.instruments[instrument.symbol] = instrument
        self._books[instrument.symbol] = (instrument, math)
        self._index_fill_book(instrument, math)

    def _index_fill_book(self, instrument: Instrument, math: ContractMath) -> None:
        """Give a trading linear or inverse future or perpetual a fresh :class:`_FillBook`
        (its parameters may have changed: new tick, lot or status); take it from any other."""
        if instrument.status is _TRADING and not (instrument.is_spot or instrument.is_option):
            both = self._position_key(instrument.symbol, _BOTH)
            self._fill_books[instrument.symbol] = _FillBook(instrument, math, both)
        else:
            self._fill_books.pop(instrument.symbol, None)

    def _on_instrument_params(self, event: InstrumentParamsChanged) -> list[Output]:
        current = self._instrument(event.symbol)
        settle_scale = self.assets[current.settle].scale
        self._set_instrument(instrument_with_changes(current, event, settle_scale))
        return []

    # --- accounts ----------------------------------------------------------------------

    def _on_account_opened(self, event: AccountOpened) -> list[Output]:
        if event.account in self.accounts:
            raise _reject(RejectReason.ALREADY_EXISTS, "account", event.account)
        if not event.account or event.account.startswith(SYSTEM_PREFIX):
            raise _reject(RejectReason.INVALID_PARAMETER, "account", event.account, "reserved")
        self.accounts[event.account] = Account(
            id=event.account, position_mode=PositionMode(event.position_mode)
        )
        return []

    def _on_set_position_mode(self, event: SetPositionMode) -> list[Output]:
        account = self._account(event.account, "account")
        if any(p.qty or p.isolated_margin for p in account.positions.values()):
            raise _reject(RejectReason.POSITION_OPEN, "account", event.account)
        account.position_mode = PositionMode(event.mode)
        return []

    def _on_set_margin_mode(self, event: SetMarginMode) -> list[Output]:
        account = self._account(event.account, "account")
        instrument = self._instrument(event.symbol)
        if instrument.is_spot or instrument.is_option:
            raise _reject(RejectReason.NOT_APPLICABLE, "symbol", event.symbol, "no margin mode")
        if any(p.symbol == event.symbol for p in account.positions.values()):
            raise _reject(RejectReason.POSITION_OPEN, "symbol", event.symbol)
        account.margin_modes[event.symbol] = MarginMode(event.mode)
        return []

    # --- funds -------------------------------------------------------------------------

    def _on_deposit(self, event: Deposit) -> list[Output]:
        account = self._account(event.account, "account")
        amount = self._amount(event.asset, event.amount)
        account.balance(event.asset).free += amount
        return []

    def _on_withdrawal(self, event: Withdrawal) -> list[Output]:
        account = self._account(event.account, "account")
        amount = self._amount(event.asset, event.amount)
        balance = account.balances.get(event.asset)
        if balance is None or balance.free < amount:
            raise _reject(RejectReason.INSUFFICIENT_BALANCE, "amount", event.amount, event.asset)
        if self.loans.by_account:
            self._check_loans_allow_out(event.account, event.asset, amount, event.ts, event.amount)
        balance.free -= amount
        return []

    def _check_loans_allow_out(
        self, account_id: str, asset: str, amount: int, now: int, text: str
    ) -> None:
        """An indebted spot-margin account keeps its margin level above the transfer-out
        level (:func:`fengkong.ledger.loans.transfer_out_refusal`); fail closed on prices."""
        refusal = transfer_out_refusal(self.loans, account_id, asset, amount, now)
        if refusal is not None:
            why, message = refusal
            reason = (
                RejectReason.MARGIN_CHECK_UNAVAILABLE
                if why == "price"
                else RejectReason.INSUFFICIENT_BALANCE
            )
            raise _reject(reason, "amount", text, message)

    def _on_transfer(self, event: Transfer) -> list[Output]:
        source = self._account(event.from_account, "from_account")
        target = self._account(event.to_account, "to_account")
        amount = self._amount(event.asset, event.amount)
        if source is target:
            raise _reject(RejectReason.INVALID_PARAMETER, "to_account", event.to_account, "same")
        balance = source.balances.get(event.asset)
        if balance is None or balance.free < amount:
            raise _reject(RejectReason.INSUFFICIENT_BALANCE, "amount", event.amount, event.asset)
        if self.loans.by_account:
            self._check_loans_allow_out(
                event.from_account, event.asset, amount, event.ts, event.amount
            )
        balance.free -= amount
        target.balance(event.asset).free += amount
        return []

    def _on_margin_transfer(self, event: MarginTransfer) -> list[Output]:
        account = self._account(event.account, "account")
        instrument = self._instrument(event.symbol)
        if instrument.is_spot or instrument.is_option:
            raise _reject(RejectReason.NOT_APPLICABLE, "symbol", event.symbol, "no margin")
        if account.margin_modes.get(event.symbol, _CROSS) is not MarginMode.ISOLATED:
            raise _reject(RejectReason.NOT_APPLICABLE, "symbol", event.symbol, "not isolated")
        self._check_position_side(account, event.position_side, "position_side")
        scale = self.assets[instrument.settle].scale
        amount = parse_number(event.amount, scale, "amount")
        if amount == 0:
            raise _reject(RejectReason.NON_POSITIVE_AMOUNT, "amount", event.amount)
        key = (event.symbol, event.position_side)
        position = account.positions.get(key)
        if amount > 0:
            balance = account.balances.get(instrument.settle)
            if balance is None or balance.free < amount:
                raise _reject(RejectReason.INSUFFICIENT_BALANCE, "amount", event.amount)
            balance.free -= amount
            if position is None:
                position = Position(
                    symbol=event.symbol,
                    side=PositionSide(event.position_side),
                    margin_mode=MarginMode.ISOLATED,
                )
                self._index_position(account, position)
            position.isolated_margin += amount
            return []
        if position is None or position.isolated_margin < -amount:
            raise _reject(RejectReason.INSUFFICIENT_ISOLATED_MARGIN, "amount", event.amount)
        if position.qty:
            raise _reject(
                RejectReason.MARGIN_CHECK_UNAVAILABLE,
                "amount",
                event.amount,
                "removing margin from an open position needs the margin model",
            )
        position.isolated_margin += amount
        account.balance(instrument.settle).free -= amount
        if not position.isolated_margin:
            self._drop_position(account, position)
        return []

    # --- fills -------------------------------------------------------------------------

    def _on_fill(self, event: Fill) -> list[Output]:
        """Apply a fill, or refuse it with no change.

        The common fill — a trading linear or inverse future or perpetual between two known
        one-way accounts, no gated orders — takes this straight path: the checks and
        arithmetic of :meth:`_fill_checked`, resolved once per instrument
        (:class:`_FillBook`) and per fee text (:meth:`_fill_fee_rates`), both legs computed in
        locals, then applied. Every other fill, and every fill this path would refuse for
        an unknown or hedge-mode party, goes to :meth:`_fill_checked`, so that a refusal and
        its reason are that method's. Equal to it on every fill (tests/ledger/test_fill_path.py).
        """
        try:
            book = self._fill_books[event.symbol]
            accounts = self.accounts
            buyer = accounts[event.buyer]
            seller = accounts[event.seller]
        except KeyError:
            return self._fill_checked(event)
        if (
            buyer is seller
            or event.buy_order_id is not None
            or event.sell_order_id is not None
            or event.buyer_position_side is not _BOTH
            or event.seller_position_side is not _BOTH
            or buyer.position_mode is _HEDGE
            or seller.position_mode is _HEDGE
        ):
            return self._fill_checked(event)
        try:
            price = book.prices[event.price]
        except KeyError:
            price = book.price(event.price)
        try:
            qty = book.qtys[event.qty]
        except KeyError:
            qty = book.qty(event.qty)
        try:
            buyer_minus_rate, seller_minus_rate = book.rates[
                event.maker_fee_rate, event.taker_fee_rate, event.taker_side
            ]
        except KeyError:
            buyer_minus_rate, seller_minus_rate = self._fill_fee_rates(event, book)
        settle = book.settle
        # entry value opened (ContractMath.open_value); fee = -((base x rate) // divisor)
        if book.inverse:
            divisor = price * book.open_den
            buy_open = (qty * book.open_num) // divisor
            sell_open = (-qty * book.open_num) // divisor
            fee_base = qty
            fee_divisor = price * book.fee_den
        else:
            fee_base = buy_open = qty * price * book.open_num
            sell_open = -buy_open
            fee_divisor = book.fee_den
        # --- buyer: +qty; ``longs``: the long contracts it adds, the seller removes ---
        buy_position = buyer.positions.get(book.both)
        if buy_position is None:
            buy_new = longs = qty
            buy_pnl = 0
            buy_value = buy_open
            buy_mode = buyer.margin_modes.get(book.symbol, _CROSS)
        else:
            buy_held = buy_position.qty
            buy_new = buy_held + qty
            buy_mode = buy_position.margin_mode
            if buy_held >= 0:
                longs = qty
                buy_value = buy_position.entry_value + buy_open
                buy_pnl = 0
            else:
                longs = buy_new if buy_new > 0 else 0
                buy_value, buy_pnl = book.math.reduce(
                    buy_held, buy_position.entry_value, qty, price
                )
        buy_fee = -((fee_base * buyer_minus_rate) // fee_divisor)
        buy_wallet = buyer.balances.get(settle)
        free = 0 if buy_wallet is None else buy_wallet.free
        if buy_mode is _CROSS:
            if free + buy_pnl < buy_fee:
                raise _unpaid_by(buy_mode, "buyer", buyer.id, settle)
        elif (
            min(
                (0 if buy_position is None else buy_position.isolated_margin) + buy_pnl,
                free - buy_fee,
            )
            < 0
        ):
            raise _unpaid_by(buy_mode, "buyer", buyer.id, settle)
        # --- seller: -qty ---
        sell_position = seller.positions.get(book.both)
        if sell_position is None:
            sell_new = -qty
            sell_pnl = 0
            sell_value = sell_open
            sell_mode = seller.margin_modes.get(book.symbol, _CROSS)
        else:
            sell_held = sell_position.qty
            sell_new = sell_held - qty
            sell_mode = sell_position.margin_mode
            if sell_held <= 0:
                sell_value = sell_position.entry_value + sell_open
                sell_pnl = 0
            else:
                longs -= qty if qty < sell_held else sell_held
                sell_value, sell_pnl = book.math.reduce(
                    sell_held, sell_position.entry_value, -qty, price
                )
        sell_fee = -((fee_base * seller_minus_rate) // fee_divisor)
        sell_wallet = seller.balances.get(settle)
        free = 0 if sell_wallet is None else sell_wallet.free
        if sell_mode is _CROSS:
            if free + sell_pnl < sell_fee:
                raise _unpaid_by(sell_mode, "seller", seller.id, settle)
        elif (
            min(
                (0 if sell_position is None else sell_position.isolated_margin) + sell_pnl,
                free - sell_fee,
            )
            < 0
        ):
            raise _unpaid_by(sell_mode, "seller", seller.id, settle)
        # --- apply: nothing below may fail ---
        if buy_position is None:
            buy_position = Position(book.symbol, _BOTH, buy_mode)
            self._index_position(buyer, buy_position)
        buy_position.qty = buy_new
        buy_position.entry_value = buy_value
        if buy_wallet is None:
            buy_wallet = buyer.balance(settle)
        if buy_pnl:
            buy_position.realized_pnl += buy_pnl
            if buy_mode is _CROSS:
                buy_wallet.free += buy_pnl - buy_fee
            else:
                buy_wallet.free -= buy_fee
                buy_position.isolated_margin += buy_pnl
        else:
            buy_wallet.free -= buy_fee
        if sell_position is None:
            sell_position = Position(book.symbol, _BOTH, sell_mode)
            self._index_position(seller, sell_position)
        sell_position.qty = sell_new
        sell_position.entry_value = sell_value
        if sell_wallet is None:
            sell_wallet = seller.balance(settle)
        if sell_pnl:
            sell_position.realized_pnl += sell_pnl
            if sell_mode is _CROSS:
                sell_wallet.free += sell_pnl - sell_fee
            else:
                sell_wallet.free -= sell_fee
                sell_position.isolated_margin += sell_pnl
        else:
            sell_wallet.free -= sell_fee
        fees = book.fees
        if fees is None:
            fees, book.settlement = self._clearing.get(settle) or self._clearing_wallets(settle)
            book.fees = fees
        fees.free += buy_fee + sell_fee
        if buy_pnl or sell_pnl:
            book.settlement.free -= buy_pnl + sell_pnl
        if longs:
            open_interest = self.open_interest
            open_interest[book.symbol] = open_interest.get(book.symbol, 0) + longs
        if not buy_new:
            self._close_out(buyer, buy_position, settle)
        if not sell_new:
            self._close_out(seller, sell_position, settle)
        return []

    def _fill_fee_rates(self, event: Fill, book: _FillBook) -> tuple[int, int]:
        """Minus the buyer's and minus the seller's fee rates of a fill times the book's
        ``fee_factor`` (the fee formula's operands), checked as :meth:`_fill_checked` checks
        them, remembered in the book per (maker text, taker text, taker side)."""
        rates = book.rates
        maker_rate = self._rate(event.maker_fee_rate, "maker_fee_rate")
        taker_rate = self._rate(event.taker_fee_rate, "taker_fee_rate")
        if taker_rate < 0 or maker_rate + taker_rate < 0:
            raise _reject(
                RejectReason.INVALID_PARAMETER,
                "maker_fee_rate",
                event.maker_fee_rate,
                "a rebate may not exceed the taker fee",
            )
        if event.taker_side == _BUY:
            buyer_rate, seller_rate = taker_rate, maker_rate
        else:
            buyer_rate, seller_rate = maker_rate, taker_rate
        pair = (-buyer_rate * book.fee_factor, -seller_rate * book.fee_factor)
        if len(rates) >= _RATE_CACHE_LIMIT:
            rates.clear()
        rates[(event.maker_fee_rate, event.taker_fee_rate, event.taker_side)] = pair
        return pair

    def _fill_checked(self, event: Fill) -> list[Output]:
        """Apply any fill, or refuse it with no change: the reference path (spot, options,
        gated orders, hedge legs, and every refusal); :meth:`_on_fill` is its fast twin."""
        if event.buy_order_id is not None or event.sell_order_id is not None:
            return self._fill_releasing(event)
        book = self._books.get(event.symbol)
        if book is None:
            raise _reject(RejectReason.UNKNOWN_INSTRUMENT, "symbol", event.symbol)
        instrument, math = book
        if instrument.status is not _TRADING:
            raise _reject(
                RejectReason.INSTRUMENT_NOT_TRADING, "symbol", event.symbol, instrument.status
            )
        accounts = self.accounts
        buyer = accounts.get(event.buyer)
        if buyer is None:
            raise _reject(RejectReason.UNKNOWN_ACCOUNT, "buyer", event.buyer)
        seller = accounts.get(event.seller)
        if seller is None:
            raise _reject(RejectReason.UNKNOWN_ACCOUNT, "seller", event.seller)
        if buyer is seller:
            raise _reject(RejectReason.SELF_TRADE, "seller", event.seller)
        price = math.parsed_prices.get(event.price)
        if price is None:
            price = math.remember_price(
                event.price, parse_number(event.price, math.price_scale, "price", minimum=1)
            )
        if price % instrument.tick_size:
            raise _reject(RejectReason.PRICE_OFF_TICK, "price", event.price)
        qty = math.parsed_qtys.get(event.qty)
        if qty is None:
            qty = math.remember_qty(
                event.qty, parse_number(event.qty, math.qty_scale, "qty", minimum=1)
            )
        if qty % instrument.lot_size:
            raise _reject(RejectReason.QTY_OFF_LOT, "qty", event.qty)
        rates = self._rates
        maker_rate = rates.get(event.maker_fee_rate)
        if maker_rate is None:
            maker_rate = self._rate(event.maker_fee_rate, "maker_fee_rate")
        taker_rate = rates.get(event.taker_fee_rate)
        if taker_rate is None:
            taker_rate = self._rate(event.taker_fee_rate, "taker_fee_rate")
        if taker_rate < 0 or maker_rate + taker_rate < 0:
            raise _reject(
                RejectReason.INVALID_PARAMETER,
                "maker_fee_rate",
                event.maker_fee_rate,
                "a rebate may not exceed the taker fee",
            )
        if event.taker_side == _BUY:
            buyer_rate, seller_rate = taker_rate, maker_rate
        else:
            buyer_rate, seller_rate = maker_rate, taker_rate
        if instrument.kind is _SPOT:
            return self._fill_spot(
                event, instrument, math, buyer, seller, price, qty, buyer_rate, seller_rate
            )
        settle = instrument.settle
        buy = self._leg(
            event, math, settle, buyer, event.buyer_position_side, qty, price, buyer_rate, "buyer"
        )
        sell = self._leg(
            event,
            math,
            settle,
            seller,
            event.seller_position_side,
            -qty,
            price,
            seller_rate,
            "seller",
        )
        if instrument.kind is _OPTION:
            # the premium moves in full at the fill; realized PnL is reported, not paid
            value = math.linear_value(qty, price)
            buy = _with_cash(buy, -math.to_settle(value, CHARGE))
            sell = _with_cash(sell, math.to_settle(value, PAYOUT))
        if buy[_WALLET] < 0:
            raise _unpaid(buy, "buyer", settle)
        if sell[_WALLET] < 0:
            raise _unpaid(sell, "seller", settle)
        # --- apply: nothing below may fail ---
        clearing = self._clearing.get(settle) or self._clearing_wallets(settle)
        self._apply_leg(buy, event.symbol, settle, clearing)
        self._apply_leg(sell, event.symbol, settle, clearing)
        return []

    def _fill_releasing(self, event: Fill) -> list[Output]:
        """A fill naming gated orders: release what ``reservations`` says those orders hold
        for it (locked -> free), apply the fill as if it named none, and put the reservation
        back exactly if the fill is refused, so a refused fill changes nothing."""
        releases = () if self.reservations is None else self.reservations(event)
        for account_id, asset, amount in releases:
            balance = self._existing_balance(account_id, asset)
            if amount <= 0 or balance is None or balance.locked < amount:
                raise _reject(RejectReason.INSUFFICIENT_BALANCE, "locked", amount, asset)
        for account_id, asset, amount in releases:
            self.unlock(account_id, asset, amount)
        try:
            return self._on_fill(
                msgspec.structs.replace(event, buy_order_id=None, sell_order_id=None)
            )
        except RejectError:
            for account_id, asset, amount in releases:
                self.lock(account_id, asset, amount)
            raise

    def _clearing_wallets(self, asset: str) -> tuple[Balance, Balance]:
        """The fee and settlement accounts' balances of ``asset``, resolved once."""
        wallets = self._clearing[asset] = (
            self.accounts[FEES].balance(asset),
            self.accounts[SETTLEMENT].balance(asset),
        )
        return wallets

    def _fill_spot(
        self,
        event: Fill,
        instrument: Instrument,
        math: ContractMath,
        buyer: Account,
        seller: Account,
        price: int,
        qty: int,
        buyer_rate: int,
        seller_rate: int,
    ) -> list[Output]:
        """Spot: the buyer pays quote (rounded up) and receives base; the seller the reverse.

        The quote dust between what the buyer pays and the seller receives goes to
        ``sys:fees``. Fees are charged in the quote asset.
        """
        base, quote = instrument.base, instrument.quote
        value = math.linear_value(qty, price)
        paid = math.to_settle(value, CHARGE)
        received = math.to_settle(value, PAYOUT)
        base_units = (
            qty
            * instrument.multiplier
            * 10 ** (self.assets[base].scale - instrument.qty_scale - instrument.multiplier_scale)
        )
        buyer_fee = self._fee(math, qty, price, buyer_rate)
        seller_fee = self._fee(math, qty, price, seller_rate)
        buyer_quote = buyer.balances.get(quote)
        if buyer_quote is None or buyer_quote.free < paid + buyer_fee:
            raise _reject(RejectReason.INSUFFICIENT_BALANCE, "buyer", event.buyer, quote)
        seller_base = seller.balances.get(base)
        if seller_base is None or seller_base.free < base_units:
            raise _reject(RejectReason.INSUFFICIENT_BALANCE, "seller", event.seller, base)
        if (
            received - seller_fee < 0
            and seller.balances.get(quote, Balance()).free < seller_fee - received
        ):
            raise _reject(RejectReason.INSUFFICIENT_BALANCE, "seller", event.seller, quote)
        buyer_quote.free -= paid + buyer_fee
        buyer.balance(base).free += base_units
        seller_base.free -= base_units
        seller.balance(quote).free += received - seller_fee
        self.accounts[FEES].balance(quote).free += paid - received + buyer_fee + seller_fee
        return []

    def _fee(self, math: ContractMath, qty: int, price: int, rate: int) -> int:
        """Fee charged (> 0) or rebate paid (< 0), in settlement units."""
        if rate >= 0:
            return math.charge(qty, price, rate) if rate else 0
        return -math.payout(qty, price, -rate)

    def _leg(
        self,
        event: Fill,
        math: ContractMath,
        settle: str,
        account: Account,
        side: PositionSide,
        signed_qty: int,
        price: int,
        rate: int,
        field: str,
    ) -> _LegT:
        """Compute one party's position change, realized PnL and fee; apply nothing.

        Returns a :data:`_LegT` tuple (a plain tuple: this is the per-fill hot path).
        """
        if (account.position_mode is _HEDGE) == (side == _BOTH) or side not in _SIDES:
            raise _reject(RejectReason.POSITION_SIDE_MISMATCH, f"{field}_position_side", side)
        key = (event.symbol, side)
        position = account.positions.get(key)
        if position is None:
            qty = value = margin = 0
            margin_mode = account.margin_modes.get(event.symbol, _CROSS)
        else:
            qty, value = position.qty, position.entry_value
            margin, margin_mode = position.isolated_margin, position.margin_mode
        if side != _BOTH and (
            (side == _LONG and qty + signed_qty < 0) or (side == _SHORT and qty + signed_qty > 0)
        ):
            raise _reject(RejectReason.CLOSE_EXCEEDS_POSITION, field, account.id, side)
        new_qty = qty + signed_qty
        new_value, pnl, fee = math.trade(qty, value, signed_qty, price, rate)
        balance = account.balances.get(settle)
        free = balance.free if balance is not None else 0
        # isolated: PnL moves the position's margin, the fee is paid from the wallet
        wallet = free + pnl - fee if margin_mode is _CROSS else min(margin + pnl, free - fee)
        return (
            account, key, position, margin_mode, new_qty, new_value, pnl, pnl, fee, wallet, balance
        )  # fmt: skip

    def _apply_leg(
        self, leg: _LegT, symbol: str, settle: str, clearing: tuple[Balance, Balance]
    ) -> None:
        account, key, position, margin_mode, new_qty, new_value, pnl, cash, fee, _, wallet = leg
        if position is None:
            position = Position(symbol=symbol, side=PositionSide(key[1]), margin_mode=margin_mode)
            self._index_position(account, position)
        longs = (new_qty if new_qty > 0 else 0) - (position.qty if position.qty > 0 else 0)
        if longs:
            self.open_interest[symbol] = self.open_interest.get(symbol, 0) + longs
        position.qty = new_qty
        position.entry_value = new_value
        position.realized_pnl += pnl
        if wallet is None:
            wallet = account.balance(settle)
        fees, settlement = clearing
        if margin_mode is _CROSS:
            wallet.free += cash - fee
        else:
            wallet.free -= fee
            position.isolated_margin += cash
        fees.free += fee
        settlement.free -= cash
        if new_qty == 0:
            self._close_out(account, position, settle)

    # --- forced trades (liquidation takeover, clearing, ADL) ------------------------------

    def forced_trade(
        self,
        seq: int,
        event_id: str,
        symbol: str,
        account_id: str,
        position_side: PositionSide,
        signed_qty: int,
        price: int,
        fee_rate: int,
        *,
        counterparty: str,
        counterparty_side: PositionSide = _BOTH,
        counterparty_forced: bool = False,
        fee_account: str = FEES,
    ) -> tuple[int, int, list[Output]]:
        """Reduce ``account_id``'s ``position_side`` leg of ``symbol`` by ``signed_qty``
        contracts (exact units; opposite in sign to the position, at most its size) at
        ``price`` (exact units, on the tick) against ``counterparty``, who trades
        ``-signed_qty`` on its ``counterparty_side`` leg without a fee.

        The position and PnL arithmetic is the Fill's own (:meth:`_leg`, :meth:`_apply_leg`).
        Unlike a Fill, the forced party is never refused for lack of funds: its realized
        loss is taken with :meth:`_force_charge` (free, then locked, or the isolated margin;
        then the insurance fund; the rest socialized and reported as :class:`BadDebt`), then
        the fee ``|qty| × price × fee_rate`` (``CHARGE``) from what is left, credited to
        ``fee_account``. A fee the account cannot pay is waived, never drawn from the fund.
        The counterparty is refused like a Fill's party when it cannot pay its own loss,
        unless ``counterparty_forced``, when its loss is force-charged the same way.

        Returns ``(realized PnL of the forced party, fee charged, outputs)``. Linear and
        inverse futures and perpetuals only. Validates completely before any mutation.
        """
        book = self._books.get(symbol)
        if book is None:
            raise _reject(RejectReason.UNKNOWN_INSTRUMENT, "symbol", symbol)
        instrument, math = book
        if instrument.is_spot or instrument.is_option:
            raise _reject(RejectReason.NOT_APPLICABLE, "symbol", symbol, "futures only")
        account = self._account(account_id, "account")
        other = self._account(counterparty, "counterparty")
        if account is other:
            raise _reject(RejectReason.SELF_TRADE, "counterparty", counterparty)
        if price <= 0 or price % instrument.tick_size:
            raise _reject(RejectReason.PRICE_OFF_TICK, "price", price)
        if fee_rate < 0 or fee_rate > MAX_FEE_RATE:
            raise _reject(RejectReason.INVALID_PARAMETER, "fee_rate", fee_rate, "0..10 %")
        if fee_account not in self.accounts:
            raise _reject(RejectReason.UNKNOWN_ACCOUNT, "fee_account", fee_account)
        position = account.positions.get((symbol, position_side))
        held = 0 if position is None else position.qty
        if signed_qty == 0 or held == 0 or (held > 0) == (signed_qty > 0):
            raise _reject(RejectReason.INVALID_PARAMETER, "qty", signed_qty, "must reduce")
        if abs(signed_qty) > abs(held):
            raise _reject(RejectReason.CLOSE_EXCEEDS_POSITION, "qty", signed_qty)
        settle = instrument.settle
        event = Fill(seq=seq, id=event_id, ts=0, symbol=symbol, price="", qty="", buyer="",
                     seller="", taker_side=_BUY)  # fmt: skip
        leg = self._leg(
            event, math, settle, account, position_side, signed_qty, price, 0, "account"
        )
        cleg = self._leg(
            event, math, settle, other, counterparty_side, -signed_qty, price, 0, "counterparty"
        )
        if not counterparty_forced and cleg[_WALLET] < 0:
            raise _unpaid(cleg, "counterparty", settle)
        fee = math.charge(abs(signed_qty), price, fee_rate) if fee_rate else 0
        # --- apply: nothing below may fail ---
        outputs: list[Output] = []
        clearing = (
            self.accounts[fee_account].balance(settle),
            self.accounts[SETTLEMENT].balance(settle),
        )
        self._apply_forced(seq, event_id, leg, symbol, settle, clearing, outputs, close=False)
        if counterparty_forced:
            self._apply_forced(seq, event_id, cleg, symbol, settle, clearing, outputs, close=True)
        else:
            self._apply_leg(cleg, symbol, settle, clearing)
        charged = 0
        if fee:
            assert position is not None
            if position.margin_mode is _CROSS:
                wallet = account.balance(settle)
                available = max(wallet.free, 0) + wallet.locked
            else:
                available = max(position.isolated_margin, 0)
            charged = min(fee, available)
            if charged:
                self._force_charge(seq, event_id, account, position, settle, charged, outputs)
                clearing[0].free += charged
        if position is not None and position.qty == 0:
            self._close_out(account, position, settle)
        return leg[_CASH], charged, outputs

    def _apply_forced(
        self,
        seq: int,
        event_id: str,
        leg: _LegT,
        symbol: str,
        settle: str,
        clearing: tuple[Balance, Balance],
        outputs: list[Output],
        *,
        close: bool,
    ) -> None:
        """Apply a fee-less leg whose loss is force-charged; a flat position is closed out
        when ``close``, else kept (with its isolated margin) for the caller to charge a fee."""
        account, key, position, margin_mode, new_qty, new_value, pnl = leg[:7]
        if position is None:
            position = Position(symbol=symbol, side=PositionSide(key[1]), margin_mode=margin_mode)
            self._index_position(account, position)
        settlement = clearing[1]
        if pnl >= 0:
            self._credit_position(account, position, settle, pnl)
            settlement.free -= pnl
        else:
            settlement.free += self._force_charge(
                seq, event_id, account, position, settle, -pnl, outputs
            )
        longs = (new_qty if new_qty > 0 else 0) - (position.qty if position.qty > 0 else 0)
        if longs:
            self.open_interest[symbol] = self.open_interest.get(symbol, 0) + longs
        position.qty = new_qty
        position.entry_value = new_value
        position.realized_pnl += pnl
        if close and new_qty == 0:
            self._close_out(account, position, settle)

    # --- funding and settlement ----------------------------------------------------------

    def _on_funding(self, event: FundingPayment) -> list[Output]:
        instrument = self._instrument(event.symbol)
        if instrument.kind not in (
            InstrumentKind.LINEAR_PERPETUAL,
            InstrumentKind.INVERSE_PERPETUAL,
        ):
            raise _reject(RejectReason.NOT_APPLICABLE, "symbol", event.symbol, "not a perpetual")
        rate = self._rate(event.rate, "rate")
        mark = parse_number(event.mark_price, instrument.price_scale, "mark_price", minimum=1)
        return self.settle_funding(event.seq, event.id, event.symbol, rate, mark)

    def settle_funding(
        self, seq: int, event_id: str, symbol: str, rate: int, mark_price: int
    ) -> list[Output]:
        """Pay one funding interval on every open position of ``symbol``.

        Payment = ``|qty| × M × mark × rate`` (linear) or ``|qty| × M / mark × rate``
        (inverse), longs paying shorts when ``rate`` > 0 (margin-mechanics.md §1.8). Payers
        are charged rounded up, receivers credited rounded down; the difference (dust) stays
        with ``sys:settlement``. A payer who cannot pay in full leaves bad debt (reported).
        """
        instrument = self.instruments[symbol]
        math = self._books[symbol][1]
        settle = instrument.settle
        settlement = self.accounts[SETTLEMENT].balance(settle)
        outputs: list[Output] = []
        paid = received = count = 0
        magnitude = abs(rate)
        # account order, not opening order: a restored ledger rebuilds its index sorted, and
        # bad debt drawn from the insurance fund depends on who is paid first
        accounts = self.accounts
        longs_pay = rate > 0
        for (account_id, _side), position in _in_account_order(self.holders(symbol)):
            held = position.qty
            if not held or not rate:
                continue
            count += 1
            if (held > 0) == longs_pay:
                charge = math.charge(held if held > 0 else -held, mark_price, magnitude)
                wallet = (
                    accounts[account_id].balances.get(settle)
                    if position.margin_mode is _CROSS
                    else None
                )
                if wallet is not None and wallet.free >= charge:
                    wallet.free -= charge  # all of it from the free balance (_force_charge)
                    collected = charge
                else:
                    collected = self._force_charge(
                        seq, event_id, accounts[account_id], position, settle, charge, outputs
                    )
                paid += collected
                settlement.free += collected
            else:
                credit = math.payout(held if held > 0 else -held, mark_price, magnitude)
                self._credit_position(accounts[account_id], position, settle, credit)
                settlement.free -= credit
                received += credit
        outputs.append(
            FundingSettled(
                seq=seq,
                id=event_id,
                symbol=symbol,
                asset=settle,
                positions=count,
                paid=paid,
                received=received,
                dust=paid - received,
            )
        )
        return outputs

    def _on_settlement(self, event: Settlement) -> list[Output]:
        instrument = self._instrument(event.symbol)
        if instrument.kind not in DATED_KINDS:
            raise _reject(RejectReason.NOT_APPLICABLE, "symbol", event.symbol, "not dated")
        if instrument.status is InstrumentStatus.SETTLED:
            raise _reject(RejectReason.INSTRUMENT_NOT_TRADING, "symbol", event.symbol, "settled")
        assert instrument.expiry is not None
        if event.ts < instrument.expiry:
            raise _reject(RejectReason.INVALID_PARAMETER, "ts", event.ts, "before expiry")
        price = parse_number(event.price, instrument.price_scale, "price", minimum=1)
        math = self._books[event.symbol][1]
        settle = instrument.settle
        settlement = self.accounts[SETTLEMENT].balance(settle)
        outputs: list[Output] = []
        paid = charged = count = 0
        for (account_id, _side), position in _in_account_order(self.holders(event.symbol)):
            account = self.accounts[account_id]
            if position.qty:
                count += 1
                amount = self._expiry_cash(instrument, math, position, price)
                if amount >= 0:
                    self._credit_position(account, position, settle, amount)
                    settlement.free -= amount
                    paid += amount
                else:
                    collected = self._force_charge(
                        event.seq, event.id, account, position, settle, -amount, outputs
                    )
                    settlement.free += collected
                    charged += collected
                position.realized_pnl += amount
                position.qty = 0
                position.entry_value = 0
            self._close_out(account, position, settle)
        self.open_interest.pop(event.symbol, None)
        self._set_instrument(msgspec.structs.replace(instrument, status=InstrumentStatus.SETTLED))
        outputs.append(
            InstrumentSettled(
                seq=event.seq,
                id=event.id,
                symbol=event.symbol,
                asset=settle,
                positions=count,
                paid_to_users=paid,
                charged_to_users=charged,
            )
        )
        return outputs

    def _expiry_cash(
        self, instrument: Instrument, math: ContractMath, position: Position, price: int
    ) -> int:
        """Signed cash to the holder at expiry, in settlement units, rounded by CREDIT.

        Futures: the realized PnL of closing at ``price``. Options: the payoff
        ``qty × M × max(±(S − K), 0)`` in quote, or divided by ``S`` when settled in the base
        (Deribit's inverse options: payoff in BTC = intrinsic USD / delivery price).
        """
        if not instrument.is_option:
            _flat, pnl = math.reduce(position.qty, position.entry_value, -position.qty, price)
            return pnl
        assert instrument.strike is not None
        intrinsic = price - instrument.strike
        if instrument.option_kind is OptionKind.PUT:
            intrinsic = -intrinsic
        if intrinsic <= 0:
            return 0
        value = position.qty * math.multiplier * intrinsic
        if instrument.settle == instrument.quote:
            return math.to_settle(value)
        # base-settled: value / S, at value_scale - price_scale + price_scale decimals
        scale_pow = 10 ** (math.settle_scale)
        return div_round(
            value * scale_pow,
            price * 10 ** (math.value_scale - math.price_scale),
            PAYOUT,
        )

    # --- cash helpers ------------------------------------------------------------------

    def _credit_position(
        self, account: Account, position: Position, settle: str, amount: int
    ) -> None:
        if position.margin_mode is _CROSS:
            account.balance(settle).free += amount
        else:
            position.isolated_margin += amount

    def _force_charge(
        self,
        seq: int,
        event_id: str,
        account: Account,
        position: Position,
        settle: str,
        amount: int,
        outputs: list[Output],
    ) -> int:
        """Take ``amount`` from the position's margin (isolated) or the wallet (cross: free,
        then locked). Return what was collected from the account plus what the insurance fund
        covered; the rest is socialized and reported as :class:`BadDebt`."""
        if position.margin_mode is _CROSS:
            wallet = account.balance(settle)
            from_free = min(amount, max(wallet.free, 0))
            wallet.free -= from_free
            from_locked = min(amount - from_free, wallet.locked)
            wallet.locked -= from_locked
            collected = from_free + from_locked
        else:
            collected = min(amount, max(position.isolated_margin, 0))
            position.isolated_margin -= collected
        shortfall = amount - collected
        if not shortfall:
            return collected
        fund = self.accounts[INSURANCE].balance(settle)
        covered = min(shortfall, max(fund.free, 0))
        fund.free -= covered
        outputs.append(
            BadDebt(
                seq=seq,
                id=event_id,
                account=account.id,
                asset=settle,
                shortfall=shortfall,
                insurance=covered,
                socialized=shortfall - covered,
            )
        )
        return collected + covered

    def _close_out(self, account: Account, position: Position, settle: str) -> None:
        """A flat position returns its isolated margin to the wallet and is dropped."""
        if position.isolated_margin:
            account.balance(settle).free += position.isolated_margin
            position.isolated_margin = 0
        self._drop_position(account, position)

    # --- indexes and lookups -----------------------------------------------------------

    def _index_position(self, account: Account, position: Position) -> None:
        key = self._position_key(position.symbol, position.side)
        account.positions[key] = position
        self._holders.setdefault(position.symbol, {})[(account.id, position.side)] = position

    def _position_key(self, symbol: str, side: PositionSide) -> tuple[str, PositionSide]:
        key = (symbol, side)
        return self._position_keys.setdefault(key, key)

    def _drop_position(self, account: Account, position: Position) -> None:
        del account.positions[(position.symbol, position.side)]
        holders = self._holders[position.symbol]
        del holders[(account.id, position.side)]
        if not holders:
            del self._holders[position.symbol]

    def _account(self, account_id: str, field: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise _reject(RejectReason.UNKNOWN_ACCOUNT, field, account_id)
        return account

    def _instrument(self, symbol: str) -> Instrument:
        instrument = self.instruments.get(symbol)
        if instrument is None:
            raise _reject(RejectReason.UNKNOWN_INSTRUMENT, "symbol", symbol)
        return instrument

    def _amount(self, asset_code: str, text: str) -> int:
        asset = self.assets.get(asset_code)
        if asset is None:
            raise _reject(RejectReason.UNKNOWN_ASSET, "asset", asset_code)
        return parse_number(text, asset.scale, "amount", minimum=1)

    def _check_position_side(self, account: Account, side: PositionSide, field: str) -> None:
        hedge = account.position_mode is _HEDGE
        if hedge == (side == _BOTH):
            raise _reject(RejectReason.POSITION_SIDE_MISMATCH, field, side)

    def _rate(self, text: str, field: str) -> int:
        rate = self._rates.get(text)
        if rate is None:
            rate = parse_number(text, RATE_SCALE, field)
            if abs(rate) > MAX_FEE_RATE:
                raise _reject(RejectReason.INVALID_PARAMETER, field, text, "beyond ±10 %")
            if len(self._rates) >= _RATE_CACHE_LIMIT:
                self._rates.clear()
            self._rates[text] = rate
        return rate
