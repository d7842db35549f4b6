"""Exact contract arithmetic: entry value, realized PnL, notional and fees, per instrument.

All inputs are integers: quantities ``q`` in contracts at the instrument's ``qty_scale``,
prices at ``price_scale``, the multiplier ``M`` at ``multiplier_scale``, rates at
:data:`RATE_SCALE`. Every result that can leave a remainder is rounded by a named rule of
:mod:`fengkong.model.fixed`, always in the exchange's favour.

Linear (USDⓈ-M, spot, options' premium): value of ``q`` contracts at price ``p`` is
``q × M × p`` quote units, exact at ``value_scale = qty_scale + multiplier_scale +
price_scale``. A position keeps the exact signed sum of the values it was opened at
(``entry_value``); closing ``c`` of ``|Q|`` contracts at ``x`` removes
``Vr = ceil(V × c / |Q|)`` and realizes ``side × c × M × x − Vr`` (source: the linear PnL
``UPNL = side × qty × (mark − entry)`` of margin-mechanics.md, "Conventions").

Inverse (COIN-M): value in coin of ``q`` contracts at ``p`` is ``q × M / p``
(``N × (1/entry − 1/mark)`` in margin-mechanics.md §2), kept at
``value_scale = settle_scale + INVERSE_EXTRA_DECIMALS``. Opening rounds the value down
(floor, for both signs), which lowers a long's later PnL and raises a short's cost; closing
removes ``Vr = floor(V × c / |Q|)`` and values the exit at ``E = q × M / x`` rounded up for a
long and down for a short, realizing ``Vr − side × E``. The average entry price is the
harmonic mean ``Σq / Σ(q/p)``, as Binance COIN-M reports it.

Realized PnL is converted to settlement-asset units with ``CREDIT`` (floor). Fees are
``notional × rate`` rounded up (``CHARGE``); a negative rate (maker rebate) pays
``notional × |rate|`` rounded down (``PAYOUT``).
"""

from __future__ import annotations

from fengkong.model.fixed import CHARGE, CREDIT, PAYOUT, Rounding, div_round
from fengkong.model.instruments import Instrument

RATE_SCALE = 8
"""Decimals of fee and funding rates (Binance publishes funding rates with 8)."""

INVERSE_EXTRA_DECIMALS = 12
"""Extra decimals, beyond the settlement asset's, at which inverse entry values are kept."""


def _scaler(exponent: int) -> tuple[int, int]:
    """``(up, down)`` such that ``x × 10**exponent == x × up / down`` with one of them 1."""
    return (10**exponent, 1) if exponent >= 0 else (1, 10**-exponent)


PARSE_CACHE_LIMIT = 1 << 15
"""Distinct price (and quantity) texts remembered per instrument before the cache is cleared:
±16,000 ticks around the market, about 3 MB per instrument at worst."""


def _remember(cache: dict[str, int], text: str, units: int) -> int:
    if len(cache) >= PARSE_CACHE_LIMIT:
        cache.clear()
    cache[text] = units
    return units


class ContractMath:
    """Pre-resolved scales of one instrument and its exact value / PnL / fee formulas.

    Powers of ten are resolved once at listing so that the per-fill arithmetic is a handful
    of integer multiplications and one floor division.
    """

    __slots__ = (
        "_fee_down",
        "_fee_up",
        "_inv_den",
        "_inv_num",
        "_settle_down",
        "_settle_up",
        "inverse",
        "multiplier",
        "parsed_prices",
        "parsed_qtys",
        "price_scale",
        "qty_scale",
        "settle_scale",
        "value_scale",
    )

    def __init__(self, instrument: Instrument, settle_scale: int) -> None:
        self.inverse = instrument.is_inverse
        self.multiplier = instrument.multiplier
        self.price_scale = instrument.price_scale
        self.qty_scale = instrument.qty_scale
        self.settle_scale = settle_scale
        qm_scale = instrument.qty_scale + instrument.multiplier_scale
        if self.inverse:
            self.value_scale = settle_scale + INVERSE_EXTRA_DECIMALS
            # q*M/p coin = (qu*Mu/pu) * 10^(ps - qm_scale); at value_scale decimals:
            self._inv_num, self._inv_den = _scaler(
                instrument.price_scale - qm_scale + self.value_scale
            )
        else:
            self.value_scale = qm_scale + instrument.price_scale
            self._inv_num = self._inv_den = 1
        self._settle_up, self._settle_down = _scaler(settle_scale - self.value_scale)
        self._fee_up, self._fee_down = _scaler(settle_scale - self.value_scale - RATE_SCALE)
        self.parsed_prices: dict[str, int] = {}
        self.parsed_qtys: dict[str, int] = {}

    # --- parsed-text caches (fills repeat the same price levels and sizes) --------------

    def remember_price(self, text: str, units: int) -> int:
        """Cache the exact units of a price text already validated by the caller."""
        return _remember(self.parsed_prices, text, units)

    def remember_qty(self, text: str, units: int) -> int:
        return _remember(self.parsed_qtys, text, units)

    # --- values -------------------------------------------------------------------------

    def linear_value(self, qty: int, price: int) -> int:
        """``q × M × p`` at ``value_scale`` (exact)."""
        return qty * self.multiplier * price

    def inverse_value(self, qty: int, price: int, rounding: Rounding) -> int:
        """``q × M / p`` coin at ``value_scale``, rounded by ``rounding``."""
        return div_round(qty * self.multiplier * self._inv_num, price * self._inv_den, rounding)

    def open_value(self, signed_qty: int, price: int) -> int:
        """Signed entry value added when opening ``signed_qty`` contracts at ``price``."""
        if self.inverse:
            return (signed_qty * self.multiplier * self._inv_num) // (price * self._inv_den)
        return signed_qty * self.multiplier * price

    def close(self, qty: int, entry_value: int, close_qty: int, price: int) -> tuple[int, int]:
        """Close ``close_qty`` (> 0, <= |qty|) of a position; return ``(Vr, pnl_value)``.

        ``Vr`` is the entry value removed, ``pnl_value`` the realized PnL at ``value_scale``.
        """
        abs_qty = qty if qty > 0 else -qty
        long = qty > 0
        if self.inverse:
            removed = (
                entry_value
                if close_qty == abs_qty
                else div_round(entry_value * close_qty, abs_qty, Rounding.FLOOR)
            )
            exit_value = self.inverse_value(close_qty, price, CHARGE if long else PAYOUT)
            return removed, removed - exit_value if long else removed + exit_value
        removed = (
            entry_value
            if close_qty == abs_qty
            else div_round(entry_value * close_qty, abs_qty, Rounding.CEIL)
        )
        exit_value = close_qty * self.multiplier * price
        return removed, exit_value - removed if long else -exit_value - removed

    def trade(
        self, qty: int, entry_value: int, signed_qty: int, price: int, rate: int
    ) -> tuple[int, int, int]:
        """Add ``signed_qty`` at ``price`` to a position ``(qty, entry_value)``, paying ``rate``.

        Returns ``(new entry value, realized PnL, fee)``, the last two in settlement units:
        the PnL by :meth:`close` and ``CREDIT``; the fee ``notional × rate`` by ``CHARGE``,
        or a rebate (negative) by ``PAYOUT`` when ``rate`` < 0. A trade through zero closes
        the position and opens the rest at ``price``. One call per fill leg: this is the
        ledger's hot path.
        """
        size = signed_qty if signed_qty > 0 else -signed_qty
        if rate > 0:
            fee = self.charge(size, price, rate)
        elif rate < 0:
            fee = -self.payout(size, price, -rate)
        else:
            fee = 0
        if qty == 0 or (qty > 0) == (signed_qty > 0):
            return entry_value + self.open_value(signed_qty, price), 0, fee
        held = qty if qty > 0 else -qty
        removed, pnl_value = self.close(qty, entry_value, size if size < held else held, price)
        pnl = (pnl_value * self._settle_up) // self._settle_down  # CREDIT: floor
        if size > held:
            return self.open_value(qty + signed_qty, price), pnl, fee
        return entry_value - removed, pnl, fee

    def to_settle(self, value: int, rounding: Rounding = CREDIT) -> int:
        """A value at ``value_scale`` in settlement-asset units."""
        if rounding is Rounding.FLOOR:
            return (value * self._settle_up) // self._settle_down
        return -((-value * self._settle_up) // self._settle_down)

    # --- fees and funding ---------------------------------------------------------------

    def charge(self, qty: int, price: int, rate: int) -> int:
        """``notional × rate`` in settlement units, rounded up (``CHARGE``); ``rate`` >= 0."""
        if self.inverse:
            numerator = qty * self.multiplier * rate * self._inv_num * self._fee_up
            return -((-numerator) // (price * self._inv_den * self._fee_down))
        return -((-qty * self.multiplier * price * rate * self._fee_up) // self._fee_down)

    def payout(self, qty: int, price: int, rate: int) -> int:
        """``notional × rate`` in settlement units, rounded down (``PAYOUT``); ``rate`` >= 0."""
        if self.inverse:
            numerator = qty * self.multiplier * rate * self._inv_num * self._fee_up
            return numerator // (price * self._inv_den * self._fee_down)
        return (qty * self.multiplier * price * rate * self._fee_up) // self._fee_down
