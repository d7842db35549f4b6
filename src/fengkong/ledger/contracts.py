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

from math import gcd

from fengkong.model.fixed import CREDIT, Rounding, div_round
from fengkong.model.instruments import Instrument

RATE_SCALE = 8
"""Decimals of fee and funding rates (Binance publishes funding rates with 8)."""

INVERSE_EXTRA_DECIMALS = 12
"""Extra decimals, beyond the settlement asset's, at which inverse entry values are kept."""


def _scaler(exponent: int) -> tuple[int, int]:
    """``(up, down)`` such that ``x × 10**exponent == x × up / down`` with one of them 1."""
    return (10**exponent, 1) if exponent >= 0 else (1, 10**-exponent)


def _lowest(numerator: int, denominator: int) -> tuple[int, int]:
    """``numerator / denominator`` in lowest terms (both positive)."""
    common = gcd(numerator, denominator)
    return numerator // common, denominator // common


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
        "fee_den",
        "fee_num",
        "inverse",
        "multiplier",
        "open_den",
        "open_num",
        "parsed_prices",
        "parsed_qtys",
        "price_scale",
        "qty_scale",
        "settle_scale",
        "value_fee_den",
        "value_fee_num",
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
        # fee of q contracts at p and rate r (either sign): ceil(base x r / divisor) with
        # linear: base = q x p x fee_num, divisor = fee_den;
        # inverse: base = q x fee_num, divisor = p x fee_den (see :meth:`fee`)
        # (each pair divided by its greatest common divisor: the same fractions, smaller ints
        # — an inverse fee divides by p instead of p x 10^20); and from a linear entry value
        # v = q x p x open_num: fee = ceil(v x value_fee_num x r / value_fee_den)
        self.value_fee_num, self.value_fee_den = self._fee_up, self._fee_down
        self.fee_num, self.fee_den = _lowest(
            self.multiplier * self._inv_num * self._fee_up, self._inv_den * self._fee_down
        )
        # entry value of q contracts at p: linear q x p x open_num (open_den = 1);
        # inverse floor(q x open_num / (p x open_den)) (see :meth:`open_value`)
        self.open_num, self.open_den = _lowest(self.multiplier * self._inv_num, self._inv_den)
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
            return (signed_qty * self.open_num) // (price * self.open_den)
        return signed_qty * self.open_num * price

    def trade(
        self, qty: int, entry_value: int, signed_qty: int, price: int, rate: int
    ) -> tuple[int, int, int]:
        """Add ``signed_qty`` at ``price`` to a position ``(qty, entry_value)``, paying ``rate``.

        Returns ``(new entry value, realized PnL, fee)``, the last two in settlement units:
        opening adds :meth:`open_value`; reducing (or flipping) is :meth:`reduce`; the fee
        is :meth:`fee`.
        """
        fee = self.fee(signed_qty if signed_qty > 0 else -signed_qty, price, rate)
        if qty == 0 or (qty > 0) == (signed_qty > 0):
            return entry_value + self.open_value(signed_qty, price), 0, fee
        new_value, pnl = self.reduce(qty, entry_value, signed_qty, price)
        return new_value, pnl, fee

    def reduce(self, qty: int, entry_value: int, signed_qty: int, price: int) -> tuple[int, int]:
        """Trade ``signed_qty`` at ``price`` against a position ``(qty, entry_value)`` of the
        opposite sign (``qty`` != 0); return ``(new entry value, realized PnL)``, the PnL in
        settlement units rounded by ``CREDIT`` (floor).

        Closes ``c = min(|signed_qty|, |qty|)`` contracts, removing ``Vr`` of the entry value
        (all of it when ``c == |qty|``): linear ``Vr = ceil(V × c / |Q|)`` and PnL
        ``side × c × M × x − Vr``; inverse ``Vr = floor(V × c / |Q|)``, exit value
        ``E = c × M / x`` rounded up for a long and down for a short, PnL ``Vr − side × E``
        (both against the holder). The excess of a trade through zero opens at ``price``
        (a flip). The one place where fills, forced trades and expiries realize PnL.
        """
        if qty > 0:
            held = qty
            size = -signed_qty
        else:
            held = -qty
            size = signed_qty
        closed = size if size < held else held
        if self.inverse:
            removed = entry_value if closed == held else (entry_value * closed) // held
            if qty > 0:  # exit value rounded up (CHARGE)
                pnl_value = removed + (-closed * self.open_num) // (price * self.open_den)
            else:  # rounded down (PAYOUT)
                pnl_value = removed + (closed * self.open_num) // (price * self.open_den)
        else:
            removed = entry_value if closed == held else -((-entry_value * closed) // held)
            if qty > 0:
                pnl_value = closed * self.open_num * price - removed
            else:
                pnl_value = -closed * self.open_num * price - removed
        if self._settle_down == 1:  # one of up and down is 1 (_scaler)
            pnl = pnl_value * self._settle_up
        else:
            pnl = pnl_value // self._settle_down  # CREDIT: floor
        if size > held:
            return self.open_value(qty + signed_qty, price), pnl
        return entry_value - removed, pnl

    def to_settle(self, value: int, rounding: Rounding = CREDIT) -> int:
        """A value at ``value_scale`` in settlement-asset units."""
        if rounding is Rounding.FLOOR:
            return (value * self._settle_up) // self._settle_down
        return -((-value * self._settle_up) // self._settle_down)

    # --- fees and funding ---------------------------------------------------------------

    def fee(self, qty: int, price: int, rate: int) -> int:
        """Fee of ``qty`` (> 0) contracts at ``price`` and ``rate`` of either sign: > 0 charged
        (``notional × rate`` rounded up, ``CHARGE``), < 0 a rebate paid (``notional × |rate|``
        rounded down, ``PAYOUT``). Both are ``ceil(notional × rate)``: the fill path computes
        it as ``-((base × -rate) // divisor)`` from :attr:`fee_num` / :attr:`fee_den`, equal
        to :meth:`charge` and ``-``:meth:`payout` (tested)."""
        if self.inverse:
            return -((qty * self.fee_num * -rate) // (price * self.fee_den))
        return -((qty * price * self.fee_num * -rate) // self.fee_den)

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
