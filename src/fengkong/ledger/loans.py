"""Spot cross margin in the ledger: loans from a lending pool, hourly interest, margin level.

Binance cross margin (margin-mechanics.md §3)::

    Margin Level = Total Asset Value / (Total Liabilities + Outstanding Interest)
    Outstanding Interest = Σ loan × hours × hourly rate − paid interest

**Events** (owned by the ledger, which delegates them here): :class:`SpotMarginConfigured`
(the valuation asset and the margin-level thresholds), :class:`LoanAssetConfigured` (an asset
becomes borrowable: its daily interest rate and the spot symbol whose mark values it),
:class:`Borrow`, :class:`Repay`, :class:`InterestDue`. Refusals are :class:`LoanRejected` with
one :class:`LoanRejectReason` and change nothing. The pre-trade gate also borrows on behalf of
a spot-margin order (``OrderRequest.margin``, Binance's ``MARGIN_BUY``): :meth:`LoanBook.borrow`.

**Pool and conservation.** Borrowed units come from the system account ``sys:lending`` (created
when the first asset is configured; fund it with a ``Deposit`` or ``Transfer``), and every unit
repaid — principal and interest — goes back to it. A loan and its interest are records, not
balances: they move no unit until repaid, so per-asset totals (``Ledger.asset_totals``) change
only by deposits and withdrawals. A borrow the pool cannot fund is refused (``pool_insufficient``).

**Interest** (simple, hourly; first hour charged at borrowing, then one hour at the start of
each clock hour, §3). Rates are *daily* (Binance publishes daily rates; the hourly rate is the
daily rate / 24, so 0.02 %/day is exact). Each loan keeps the exact accrued interest as an
integer in ``1 / (24 × 10^LOAN_RATE_SCALE)`` of a minor unit, and the outstanding interest is
``ceil(accrued / (24 × 10^LOAN_RATE_SCALE)) − paid`` (``CHARGE``, rounded once on the exact
sum, so the published 0.01666667 USDT comes out exactly). Accrual is lazy and exact: every
touch of a loan (borrow, repay, :class:`InterestDue`, a rate change, a margin-level query)
first charges the clock hours started since the loan's last charged hour, so the result does
not depend on when the scheduler's ``InterestDue`` arrives. A repayment pays interest first.

**Margin level** = Σ over the account's balances (free + locked) of ``units × price`` /
Σ over its loans of ``(principal + outstanding interest) × price``, in the valuation asset, at
the marks of the assets' price symbols (exact fractions). An asset that is not configured
(other than the valuation asset, always 1) counts 0 (conservative); a configured one without
a usable mark refuses the decision (fail closed). Thresholds (cross 3x by default, §3):
borrowing only while the level *after* the loan stays above ``borrow_level`` (1.5 =
``3 / (3 − 1)``, the 3x maximum leverage), transfers out only while it stays above
``transfer_out_level`` (2), margin call at or below ``margin_call_level`` (1.3), liquidation
at or below ``liquidation_level`` (1.1, :mod:`fengkong.liquidation.spot`). A margin account
keeps loans and derivatives apart, as Binance keeps the margin and futures wallets apart: an
account holding a derivative position cannot borrow (``position_open``) and the gate refuses
its derivative orders while it owes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from fractions import Fraction
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import msgspec

from fengkong.ledger.state import Account
from fengkong.margin.spot import HOUR_MS, MarginLevelState, MarginLevelThresholds
from fengkong.model.events import Event, Output, register_event, register_output
from fengkong.model.fixed import CHARGE, FixedPointError, div_round, format_units, parse_units

if TYPE_CHECKING:
    from fengkong.ledger.ledger import Ledger

__all__ = [
    "LENDING",
    "LOAN_RATE_SCALE",
    "Borrow",
    "InterestAccrued",
    "InterestDue",
    "Loan",
    "LoanAssetConfigured",
    "LoanBook",
    "LoanRefusal",
    "LoanRejectReason",
    "LoanRejected",
    "LoanRepaid",
    "Repay",
    "SpotLiquidationTrade",
    "SpotMarginConfigured",
]

LENDING = "sys:lending"
"""The lending pool: borrowed units come from it, repaid principal and interest go to it."""
LOAN_RATE_SCALE = 12
"""Decimals of a daily interest rate (``"0.0002"`` = 0.02 % a day)."""
_RATE_DEN = 24 * 10**LOAN_RATE_SCALE  # accrued interest is kept in 1/_RATE_DEN minor units
_MAX_DAILY_RATE = 10**LOAN_RATE_SCALE  # 100 % a day: anything above is a malformed rate


class LoanRejectReason(enum.StrEnum):
    """Why the ledger refused a loan event (or a spot-margin order's borrowing). The event
    changed nothing."""

    UNKNOWN_ACCOUNT = "unknown_account"
    """No such account, or a system account (they neither borrow nor repay)."""
    UNKNOWN_ASSET = "unknown_asset"
    """No such asset in the ledger."""
    NOT_CONFIGURED = "not_configured"
    """Spot margin is not configured (no ``SpotMarginConfigured``), or the asset is not
    borrowable (no ``LoanAssetConfigured``)."""
    INVALID_NUMBER = "invalid_number"
    """An amount or rate that is not a positive decimal at its scale."""
    INVALID_PARAMETER = "invalid_parameter"
    """A configuration value out of range (thresholds not decreasing, a price symbol that is
    not a spot pair of the asset against the valuation asset, ...)."""
    POSITION_OPEN = "position_open"
    """The account holds a derivative position or isolated margin: loans and derivatives are
    kept in separate accounts."""
    PRICE_UNAVAILABLE = "price_unavailable"
    """An asset of the account (held or owed) has no usable mark: the margin level cannot be
    computed, so the borrow is refused (fail closed)."""
    BORROW_LIMIT = "borrow_limit"
    """The margin level after the loan (its first hour of interest included) would not stay
    above the borrow level (the maximum leverage)."""
    POOL_INSUFFICIENT = "pool_insufficient"
    """The lending pool does not hold the amount."""
    NO_LOAN = "no_loan"
    """Repayment of an asset the account does not owe."""
    REPAY_EXCEEDS_DEBT = "repay_exceeds_debt"
    """Repayment above the outstanding interest plus principal."""
    INSUFFICIENT_BALANCE = "insufficient_balance"
    """The account's free balance does not cover the repayment."""


class LoanRefusal(Exception):
    """Raised by :class:`LoanBook` before any change; becomes a :class:`LoanRejected`."""

    __slots__ = ("field", "message", "reason", "value")

    def __init__(self, reason: LoanRejectReason, field: str, value: object, message: str = ""):
        super().__init__(f"{reason.value}: {field}={value!r}: {message}")
        self.reason = reason
        self.field = field
        self.value = value
        self.message = message


# --- events ------------------------------------------------------------------------------


@register_event
class SpotMarginConfigured(Event, tag=True):
    """Spot cross margin: the asset every margin level is valued in, and the level
    thresholds (decimal strings, decreasing; Binance cross 3x defaults, §3)."""

    valuation_asset: str
    transfer_out_level: str = "2"
    borrow_level: str = "1.5"
    margin_call_level: str = "1.3"
    liquidation_level: str = "1.1"


@register_event
class LoanAssetConfigured(Event, tag=True):
    """Make ``asset`` borrowable (or change its rate): ``daily_rate`` a fraction per day,
    charged hourly as ``daily_rate / 24``; ``price_symbol`` a listed spot pair with ``asset``
    as base and the valuation asset as quote, whose mark values the asset (``None`` for the
    valuation asset itself)."""

    asset: str
    daily_rate: str
    price_symbol: str | None = None


@register_event
class Borrow(Event, tag=True):
    """Borrow ``amount`` of ``asset`` from the lending pool into the account's free balance;
    the first hour of interest is charged at once."""

    account: str
    asset: str
    amount: str


@register_event
class Repay(Event, tag=True):
    """Repay ``amount`` of ``asset`` from the free balance: outstanding interest first, then
    principal."""

    account: str
    asset: str
    amount: str


@register_event
class InterestDue(Event, tag=True):
    """The scheduler's hourly tick: every loan is charged the clock hours started by ``ts``."""


@register_output
class LoanRejected(Output, tag=True):
    event_type: str
    reason: LoanRejectReason
    field: str
    value: str
    message: str


@register_output
class LoanRepaid(Output, tag=True):
    """A repayment (or a liquidation's): ``interest`` and ``principal`` units paid to the pool;
    ``closed`` when nothing is owed any more."""

    account: str
    asset: str
    interest: int
    principal: int
    closed: bool


@register_output
class InterestAccrued(Output, tag=True):
    """An :class:`InterestDue`: ``loans`` loans were charged up to clock hour ``hour``
    (``ts // 3,600,000``)."""

    hour: int
    loans: int


@register_output
class SpotLiquidationTrade(Output, tag=True):
    """One forced spot trade of a margin liquidation: ``sold`` units of ``sold_asset`` to the
    counterparty for ``bought`` units of ``bought_asset``, of which ``fee`` went to the fee
    account (the account received ``bought − fee``)."""

    account: str
    counterparty: str
    sold_asset: str
    sold: int
    bought_asset: str
    bought: int
    fee: int


# --- state -------------------------------------------------------------------------------


class Loan(msgspec.Struct, gc=False):
    """One account's debt in one asset.

    ``principal`` in minor units; ``accrued`` the exact interest charged since the loan was
    opened, in ``1 / (24 × 10^LOAN_RATE_SCALE)`` minor units; ``paid`` the interest units
    repaid; ``hour`` the last clock hour charged (``ts // 3,600,000``).
    """

    principal: int
    accrued: int
    paid: int
    hour: int

    def interest(self) -> int:
        """Outstanding interest in minor units: ``ceil(accrued / den) − paid``."""
        return div_round(self.accrued, _RATE_DEN, CHARGE) - self.paid


class _AssetTerms(msgspec.Struct, frozen=True, gc=False):
    rate: int  # daily, at LOAN_RATE_SCALE
    price_symbol: str | None


class _Settings(msgspec.Struct, frozen=True, gc=False):
    valuation: str
    thresholds: MarginLevelThresholds


def _level(text: str, field: str) -> Fraction:
    try:
        units = parse_units(text, 8, field=field, minimum=1)
    except FixedPointError as error:
        raise LoanRefusal(LoanRejectReason.INVALID_NUMBER, field, text, error.reason) from None
    return Fraction(units, 10**8)


class LoanBook:
    """The ledger's loans (``Ledger.loans``): configuration, debts and the pool movements.

    Public queries: :meth:`loan`, :meth:`debt`, :meth:`asset_value`, :meth:`margin_level`,
    :meth:`level_state`, :meth:`max_borrowable`, :meth:`unit_price`. Mutations (all validate
    first and raise :class:`LoanRefusal` with nothing changed): :meth:`borrow`, :meth:`repay`,
    :meth:`accrue`, :meth:`write_off`.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.settings: _Settings | None = None
        self._settings_event: SpotMarginConfigured | None = None
        self.terms: dict[str, _AssetTerms] = {}
        self.by_account: dict[str, dict[str, Loan]] = {}
        """account -> asset -> loan; an account with no debt has no entry (the gate's test
        ``account in by_account`` is its "owes anything")."""
        self.price_of: Callable[[str, int], Fraction | None] | None = None
        """Hook: the price of one whole unit of an asset in whole units of the valuation
        asset at event time ``now``, from the mark of its ``price_symbol``, or None (missing or
        stale). Registered by the pre-trade gate, which reads the market; without it every
        decision that needs a price is refused (fail closed). Not state."""

    # --- engine protocol (through the ledger) ------------------------------------------

    def handlers(self) -> dict[type, Any]:
        """Handlers that reach the loans through ``ledger.loans`` at call time: a restore
        rebuilds the ledger's state (and this book) under handlers the engine already holds."""
        return {
            SpotMarginConfigured: self._guarded("_on_configured"),
            LoanAssetConfigured: self._guarded("_on_asset_configured"),
            Borrow: self._guarded("_on_borrow"),
            Repay: self._guarded("_on_repay"),
            InterestDue: self._guarded("_on_interest_due"),
        }

    def canonical_state(self) -> dict[str, Any] | None:
        """None while spot margin was never configured (old logs keep their state hash)."""
        if self._settings_event is None and not self.terms and not self.by_account:
            return None
        return {
            "settings": self._settings_event,
            "terms": sorted([a, str(t.rate), t.price_symbol] for a, t in self.terms.items()),
            "loans": sorted(
                [account, asset, str(x.principal), str(x.accrued), str(x.paid), x.hour]
                for account, loans in self.by_account.items()
                for asset, x in loans.items()
            ),
        }

    def restore_state(self, data: dict[str, Any] | None) -> None:
        if data is None:
            return
        if data["settings"] is not None:
            self._install_settings(msgspec.convert(data["settings"], SpotMarginConfigured))
        for asset, rate, symbol in data["terms"]:
            self.terms[asset] = _AssetTerms(int(rate), symbol)
        for account, asset, principal, accrued, paid, hour in data["loans"]:
            self.by_account.setdefault(account, {})[asset] = Loan(
                int(principal), int(accrued), int(paid), hour
            )

    def _guarded(self, name: str) -> Callable[[Any], list[Output]]:
        ledger = self.ledger

        def handle(event: Any) -> list[Output]:
            try:
                handler: Callable[[Any], list[Output]] = getattr(ledger.loans, name)
                return handler(event)
            except LoanRefusal as refusal:
                return [
                    LoanRejected(
                        seq=event.seq, id=event.id, event_type=type(event).__name__,
                        reason=refusal.reason, field=refusal.field, value=str(refusal.value),
                        message=refusal.message,
                    )
                ]  # fmt: skip

        return handle

    # --- handlers ----------------------------------------------------------------------

    def _on_configured(self, event: SpotMarginConfigured) -> list[Output]:
        if event.valuation_asset not in self.ledger.assets:
            raise LoanRefusal(
                LoanRejectReason.UNKNOWN_ASSET, "valuation_asset", event.valuation_asset
            )
        if self.settings is not None and self.settings.valuation != event.valuation_asset:
            raise LoanRefusal(
                LoanRejectReason.INVALID_PARAMETER, "valuation_asset", event.valuation_asset,
                f"already {self.settings.valuation}",
            )  # fmt: skip
        levels = [
            _level(getattr(event, f), f)
            for f in ("transfer_out_level", "borrow_level", "margin_call_level",
                      "liquidation_level")
        ]  # fmt: skip
        if not all(a > b for a, b in pairwise(levels)) or levels[-1] < 1:
            raise LoanRefusal(
                LoanRejectReason.INVALID_PARAMETER, "liquidation_level", event.liquidation_level,
                "levels must decrease from transfer_out to liquidation, liquidation >= 1",
            )  # fmt: skip
        self._install_settings(event)
        self._ensure_pool()
        return []

    def _install_settings(self, event: SpotMarginConfigured) -> None:
        levels = [
            _level(getattr(event, f), f)
            for f in ("transfer_out_level", "borrow_level", "margin_call_level",
                      "liquidation_level")
        ]  # fmt: skip
        self._settings_event = msgspec.structs.replace(event, seq=0, id="spot-margin", ts=0)
        self.settings = _Settings(event.valuation_asset, MarginLevelThresholds(*levels))

    def _ensure_pool(self) -> None:
        if LENDING not in self.ledger.accounts:
            self.ledger.accounts[LENDING] = Account(id=LENDING)

    def _on_asset_configured(self, event: LoanAssetConfigured) -> list[Output]:
        ledger = self.ledger
        settings = self._require_settings()
        if event.asset not in ledger.assets:
            raise LoanRefusal(LoanRejectReason.UNKNOWN_ASSET, "asset", event.asset)
        try:
            rate = parse_units(
                event.daily_rate, LOAN_RATE_SCALE, field="daily_rate", minimum=0,
                maximum=_MAX_DAILY_RATE,
            )  # fmt: skip
        except FixedPointError as error:
            raise LoanRefusal(
                LoanRejectReason.INVALID_NUMBER, "daily_rate", event.daily_rate, error.reason
            ) from None
        symbol = event.price_symbol
        if (symbol is None) != (event.asset == settings.valuation):
            raise LoanRefusal(
                LoanRejectReason.INVALID_PARAMETER, "price_symbol", symbol,
                "required for every asset but the valuation asset",
            )  # fmt: skip
        if symbol is not None:
            instrument = ledger.instruments.get(symbol)
            if (
                instrument is None
                or not instrument.is_spot
                or instrument.base != event.asset
                or instrument.quote != settings.valuation
            ):
                raise LoanRefusal(
                    LoanRejectReason.INVALID_PARAMETER, "price_symbol", symbol,
                    f"not a listed spot pair {event.asset}/{settings.valuation}",
                )  # fmt: skip
        # --- apply ---
        if event.asset in self.terms:  # a rate change: hours so far are charged at the old one
            for loans in self.by_account.values():
                loan = loans.get(event.asset)
                if loan is not None:
                    self._catch_up(loan, self.terms[event.asset].rate, event.ts)
        self.terms[event.asset] = _AssetTerms(rate, symbol)
        self._ensure_pool()
        return []

    def _on_borrow(self, event: Borrow) -> list[Output]:
        amount = self._amount(event.asset, event.amount)
        self.borrow(event.account, event.asset, amount, event.ts)
        return []

    def _on_repay(self, event: Repay) -> list[Output]:
        amount = self._amount(event.asset, event.amount)
        interest, principal, closed = self.repay(event.account, event.asset, amount, event.ts)
        return [
            LoanRepaid(seq=event.seq, id=event.id, account=event.account, asset=event.asset,
                       interest=interest, principal=principal, closed=closed)
        ]  # fmt: skip

    def _on_interest_due(self, event: InterestDue) -> list[Output]:
        count = 0
        for account in sorted(self.by_account):
            for asset, loan in sorted(self.by_account[account].items()):
                if self._catch_up(loan, self.terms[asset].rate, event.ts):
                    count += 1
        return [InterestAccrued(seq=event.seq, id=event.id, hour=event.ts // HOUR_MS, loans=count)]

    # --- queries -----------------------------------------------------------------------

    def loan(self, account_id: str, asset: str) -> Loan | None:
        return self.by_account.get(account_id, {}).get(asset)

    def debt(self, account_id: str, asset: str, now: int) -> tuple[int, int]:
        """``(principal, outstanding interest)`` at event time ``now`` (hours started since the
        last charge included), in minor units; ``(0, 0)`` without a loan. Pure."""
        loan = self.loan(account_id, asset)
        if loan is None:
            return 0, 0
        hours = now // HOUR_MS - loan.hour
        accrued = loan.accrued + (loan.principal * self.terms[asset].rate * hours if hours > 0
                                  else 0)  # fmt: skip
        return loan.principal, div_round(accrued, _RATE_DEN, CHARGE) - loan.paid

    def unit_price(
        self, asset: str, now: int, prices: Mapping[str, Fraction] | None = None
    ) -> Fraction | None:
        """Value of one *minor* unit of ``asset`` in minor units of the valuation asset, from
        ``prices`` (whole-unit prices, e.g. ``{"BTC": Fraction(60000)}``) or the
        :attr:`price_of` hook; None when the asset is configured but has no usable price.
        The valuation asset is 1; raises ``KeyError`` for another asset not configured."""
        settings = self.settings
        assert settings is not None
        if asset == settings.valuation:
            return Fraction(1)
        terms = self.terms[asset]
        if terms.price_symbol is None:
            return Fraction(1)
        whole: Fraction | None
        if prices is not None:
            whole = prices.get(asset)
        else:
            whole = None if self.price_of is None else self.price_of(asset, now)
        if whole is None or whole <= 0:
            return None
        assets = self.ledger.assets
        return whole * Fraction(10 ** assets[settings.valuation].scale, 10 ** assets[asset].scale)

    def asset_value(
        self, account_id: str, now: int, prices: Mapping[str, Fraction] | None = None
    ) -> tuple[Fraction, Fraction]:
        """``(total asset value, total debt value)`` of the account in minor units of the
        valuation asset: balances (free + locked) of configured assets, and every loan's
        principal + outstanding interest. Raises :class:`LoanRefusal` (``price_unavailable``)
        when one of them has no usable price."""
        account = self.ledger.accounts[account_id]
        valuation = self._require_settings().valuation
        total = Fraction(0)
        for asset in sorted(account.balances):
            balance = account.balances[asset]
            held = balance.free + balance.locked
            if held and (asset in self.terms or asset == valuation):
                total += held * self._price(asset, now, prices)
        debt = Fraction(0)
        for asset, _loan in sorted(self.by_account.get(account_id, {}).items()):
            principal, interest = self.debt(account_id, asset, now)
            debt += (principal + interest) * self._price(asset, now, prices)
        return total, debt

    def margin_level(
        self, account_id: str, now: int, prices: Mapping[str, Fraction] | None = None
    ) -> Fraction | None:
        """``assets / (liabilities + interest)`` (§3); None without debt. Raises
        :class:`LoanRefusal` (``price_unavailable``) when a price is missing."""
        assets, debt = self.asset_value(account_id, now, prices)
        return assets / debt if debt > 0 else None

    def level_state(
        self, account_id: str, now: int, prices: Mapping[str, Fraction] | None = None
    ) -> MarginLevelState:
        return self._require_settings().thresholds.state(self.margin_level(account_id, now, prices))

    def max_borrowable(
        self, account_id: str, asset: str, now: int, prices: Mapping[str, Fraction] | None = None
    ) -> int:
        """The largest amount of ``asset`` (minor units) the account may borrow now: its level
        after the loan, the loan's first hour included, stays above ``borrow_level``
        (``x < (A − m D) / (m (1 + r) − 1)`` per unit price, r the hourly rate, then checked
        exactly), capped by the pool. 0 when it may not borrow at all. Raises
        :class:`LoanRefusal` like :meth:`borrow`'s checks (not configured, position open,
        price missing)."""
        settings = self._require_settings()
        self._check_borrower(account_id, asset)
        price = self._price(asset, now, prices)
        assets, debt = self.asset_value(account_id, now, prices)
        m = settings.thresholds.borrow
        hourly = Fraction(self.terms[asset].rate, _RATE_DEN)
        slope = (m * (1 + hourly) - 1) * price
        room = assets - m * debt
        if room <= 0 or slope <= 0:
            return 0
        amount = int(room / slope) + 1
        pool = self.ledger.accounts[LENDING].balances.get(asset)
        amount = min(amount, pool.free if pool is not None else 0)
        while amount > 0 and not self._level_after_ok(account_id, asset, amount, now, prices):
            amount -= 1
        return max(amount, 0)

    # --- mutations ---------------------------------------------------------------------

    def borrow(
        self,
        account_id: str,
        asset: str,
        amount: int,
        now: int,
        prices: Mapping[str, Fraction] | None = None,
    ) -> None:
        """Lend ``amount`` units of ``asset`` from ``sys:lending`` to the account's free
        balance and charge its first hour; refused (nothing changed) when the asset is not
        borrowable, the account holds derivatives, a price is missing, the pool is short or
        the level after the loan would not stay above ``borrow_level``."""
        settings = self._require_settings()
        self._check_borrower(account_id, asset)
        if amount <= 0:
            raise LoanRefusal(LoanRejectReason.INVALID_NUMBER, "amount", amount, "must be > 0")
        pool = self.ledger.accounts[LENDING].balances.get(asset)
        if pool is None or pool.free < amount:
            held = pool.free if pool is not None else 0
            raise LoanRefusal(
                LoanRejectReason.POOL_INSUFFICIENT, "amount", self._text(asset, amount),
                f"pool holds {self._text(asset, held)}",
            )  # fmt: skip
        if not self._level_after_ok(account_id, asset, amount, now, prices):
            raise LoanRefusal(
                LoanRejectReason.BORROW_LIMIT, "amount", self._text(asset, amount),
                f"margin level after the loan not above {settings.thresholds.borrow}",
            )  # fmt: skip
        # --- apply ---
        rate = self.terms[asset].rate
        loans = self.by_account.setdefault(account_id, {})
        loan = loans.get(asset)
        if loan is None:
            loans[asset] = Loan(amount, amount * rate, 0, now // HOUR_MS)
        else:
            self._catch_up(loan, rate, now)
            loan.principal += amount
            loan.accrued += amount * rate
        pool.free -= amount
        self.ledger.accounts[account_id].balance(asset).free += amount

    def repay(self, account_id: str, asset: str, amount: int, now: int) -> tuple[int, int, bool]:
        """Pay ``amount`` from the account's free balance to the pool: outstanding interest
        first, then principal. Returns ``(interest paid, principal paid, loan closed)``."""
        account = self._account(account_id)
        loan = self.loan(account_id, asset)
        if loan is None:
            raise LoanRefusal(LoanRejectReason.NO_LOAN, "asset", asset, f"{account_id} owes none")
        if amount <= 0:
            raise LoanRefusal(LoanRejectReason.INVALID_NUMBER, "amount", amount, "must be > 0")
        principal, interest = self.debt(account_id, asset, now)
        if amount > principal + interest:
            raise LoanRefusal(
                LoanRejectReason.REPAY_EXCEEDS_DEBT, "amount", self._text(asset, amount),
                f"owes {self._text(asset, principal + interest)}",
            )  # fmt: skip
        balance = account.balances.get(asset)
        if balance is None or balance.free < amount:
            held = balance.free if balance is not None else 0
            raise LoanRefusal(
                LoanRejectReason.INSUFFICIENT_BALANCE, "amount", self._text(asset, amount),
                f"free {self._text(asset, held)}",
            )  # fmt: skip
        # --- apply ---
        self._catch_up(loan, self.terms[asset].rate, now)
        paid_interest = min(amount, interest)
        paid_principal = amount - paid_interest
        loan.paid += paid_interest
        loan.principal -= paid_principal
        balance.free -= amount
        self.ledger.accounts[LENDING].balance(asset).free += amount
        closed = loan.principal == 0 and loan.interest() == 0
        if closed:
            self._drop(account_id, asset)
        return paid_interest, paid_principal, closed

    def accrue(self, account_id: str, asset: str, now: int) -> None:
        """Charge the loan the clock hours started by ``now`` (interest settled first, before a
        liquidation values or repays it)."""
        loan = self.loan(account_id, asset)
        if loan is not None:
            self._catch_up(loan, self.terms[asset].rate, now)

    def write_off(self, account_id: str, asset: str, now: int) -> tuple[int, int]:
        """Forget the whole debt of a liquidated account that has nothing left to repay with:
        ``(principal, interest)`` written off (the pool's loss; the caller reports it). Moves
        no unit."""
        principal, interest = self.debt(account_id, asset, now)
        if self.loan(account_id, asset) is not None:
            self._drop(account_id, asset)
        return principal, interest

    # --- helpers -----------------------------------------------------------------------

    def _catch_up(self, loan: Loan, rate: int, now: int) -> bool:
        hour = now // HOUR_MS
        if hour <= loan.hour:
            return False
        loan.accrued += loan.principal * rate * (hour - loan.hour)
        loan.hour = hour
        return True

    def _drop(self, account_id: str, asset: str) -> None:
        loans = self.by_account[account_id]
        del loans[asset]
        if not loans:
            del self.by_account[account_id]

    def _level_after_ok(
        self,
        account_id: str,
        asset: str,
        amount: int,
        now: int,
        prices: Mapping[str, Fraction] | None,
    ) -> bool:
        settings = self.settings
        assert settings is not None
        price = self._price(asset, now, prices)
        assets, debt = self.asset_value(account_id, now, prices)
        first_hour = div_round(amount * self.terms[asset].rate, _RATE_DEN, CHARGE)
        after_debt = debt + (amount + first_hour) * price
        return (assets + amount * price) > settings.thresholds.borrow * after_debt

    def _price(self, asset: str, now: int, prices: Mapping[str, Fraction] | None) -> Fraction:
        price = self.unit_price(asset, now, prices)
        if price is None:
            raise LoanRefusal(
                LoanRejectReason.PRICE_UNAVAILABLE, "asset", asset,
                f"no usable mark for {self.terms[asset].price_symbol}",
            )  # fmt: skip
        return price

    def _require_settings(self) -> _Settings:
        if self.settings is None:
            raise LoanRefusal(LoanRejectReason.NOT_CONFIGURED, "type", "SpotMarginConfigured")
        return self.settings

    def _account(self, account_id: str) -> Account:
        account = self.ledger.accounts.get(account_id)
        if account is None or account_id.startswith("sys:"):
            raise LoanRefusal(LoanRejectReason.UNKNOWN_ACCOUNT, "account", account_id)
        return account

    def _check_borrower(self, account_id: str, asset: str) -> None:
        account = self._account(account_id)
        if asset not in self.ledger.assets:
            raise LoanRefusal(LoanRejectReason.UNKNOWN_ASSET, "asset", asset)
        if asset not in self.terms:
            raise LoanRefusal(LoanRejectReason.NOT_CONFIGURED, "asset", asset, "not borrowable")
        if account.positions:
            symbol = min(symbol for symbol, _side in account.positions)
            raise LoanRefusal(
                LoanRejectReason.POSITION_OPEN, "account", account_id, f"holds {symbol}"
            )

    def _amount(self, asset: str, text: str) -> int:
        found = self.ledger.assets.get(asset)
        if found is None:
            raise LoanRefusal(LoanRejectReason.UNKNOWN_ASSET, "asset", asset)
        try:
            return parse_units(text, found.scale, field="amount", minimum=1)
        except FixedPointError as error:
            raise LoanRefusal(
                LoanRejectReason.INVALID_NUMBER, "amount", text, error.reason
            ) from None

    def _text(self, asset: str, units: int) -> str:
        return f"{format_units(units, self.ledger.assets[asset].scale)} {asset}"


def transfer_out_refusal(
    book: LoanBook, account_id: str, asset: str, amount: int, now: int
) -> tuple[str, str] | None:
    """Why ``amount`` of ``asset`` may not leave an indebted account (withdrawal or transfer
    out), or None: ``("price", message)`` when the margin level cannot be computed (fail
    closed), ``("level", message)`` when it would not stay above ``transfer_out_level`` (§3:
    no transfer out at or below 2). Accounts without debt are never refused here."""
    if account_id not in book.by_account or book.settings is None:
        return None
    try:
        assets, debt = book.asset_value(account_id, now)
        price = book._price(asset, now, None) if asset in book.terms else Fraction(0)
    except LoanRefusal as refusal:
        return "price", refusal.message
    after = assets - amount * price
    limit = book.settings.thresholds.transfer_out
    if after > limit * debt:
        return None
    return "level", f"margin level after the transfer {float(after / debt):.4f} <= {limit}"
