"""Integer margin arithmetic of one position or order, in settlement-asset units.

These are the exact per-order formulas of the pre-trade gate, on a
:class:`~fengkong.ledger.contracts.ContractMath` (the instrument's pre-resolved scales).
Quantities are signed contracts at the quantity scale, prices at the price scale, amounts in
settlement units; ``entry_value`` is the ledger's exact signed entry value.

Binance USDⓈ-M and COIN-M (margin-mechanics.md §1.2, §2)::

    notional       = |qty| × M × price (linear, quote);  |qty| × M / price (inverse, coin)
    initial margin = notional / leverage
    UPNL           = side × qty × (mark − entry) (linear);  side × N × (1/entry − 1/mark) (inv.)
    margin balance = wallet + UPNL
    margin ratio   = maintenance margin / margin balance   (liquidation at >= 100 %)

Open-order margin (Binance "open loss"): an order's initial margin at its own price plus the
loss it would show at once against the mark if filled at a worse price — a buy above the mark
or a sell below it.

Rounding, exchange's favour: notional, margins and open loss up (``CHARGE``); UPNL down
(``CREDIT``: a gain rounds down, a loss up in size).
"""

from __future__ import annotations

from fractions import Fraction

from fengkong.ledger.contracts import RATE_SCALE, ContractMath
from fengkong.model.fixed import CHARGE

__all__ = [
    "initial_margin",
    "margin_ratio",
    "notional",
    "open_loss",
    "order_margin",
    "unrealized_pnl",
]

_ONE = 10**RATE_SCALE


def notional(math: ContractMath, qty: int, price: int) -> int:
    """``|qty| × M × price`` (linear) or ``|qty| × M / price`` (inverse), rounded up."""
    return math.charge(qty if qty >= 0 else -qty, price, _ONE)


def initial_margin(notional_units: int, leverage: int) -> int:
    """``notional / leverage`` rounded up (``ceil(ceil(x)/L) == ceil(x/L)`` for integer L)."""
    return -((-notional_units) // leverage)


def unrealized_pnl(math: ContractMath, qty: int, entry_value: int, mark: int) -> int:
    """Signed UPNL at ``mark`` of a position ``(qty, entry_value)``, rounded down."""
    if not qty:
        return 0
    if math.inverse:
        value = entry_value - math.inverse_value(qty, mark, CHARGE)
    else:
        value = qty * math.multiplier * mark - entry_value
    return math.to_settle(value)


def open_loss(math: ContractMath, signed_qty: int, price: int, mark: int) -> int:
    """Loss against ``mark`` of an order to trade ``signed_qty`` at ``price`` (>= 0)."""
    if (price - mark) * signed_qty <= 0:
        return 0
    size = signed_qty if signed_qty > 0 else -signed_qty
    if math.inverse:
        gap = math.inverse_value(size, mark, CHARGE) - math.inverse_value(size, price, CHARGE)
        return math.to_settle(gap if gap > 0 else -gap, CHARGE)
    gap = price - mark if price > mark else mark - price
    return math.to_settle(size * math.multiplier * gap, CHARGE)


def order_margin(math: ContractMath, signed_qty: int, price: int, mark: int, leverage: int) -> int:
    """Initial margin of an opening order at its price plus its open loss against the mark."""
    return initial_margin(notional(math, signed_qty, price), leverage) + open_loss(
        math, signed_qty, price, mark
    )


def margin_ratio(maintenance: int, margin_balance: int) -> Fraction | None:
    """``MM / margin balance``; None when the balance is not positive (already bankrupt)."""
    if margin_balance <= 0:
        return None
    return Fraction(maintenance, margin_balance)
