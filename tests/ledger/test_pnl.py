"""Realized PnL, fees and settlement cash with hand-worked numbers.

Worked examples come from ../shared/specs/margin-mechanics.md; each test names its source.
"""

from __future__ import annotations

from fengkong.ledger.contracts import ContractMath
from fengkong.model.events import FundingPayment, Rejected, RejectReason, Settlement
from fengkong.model.fixed import PAYOUT
from tests.factories import EXPIRY, balance, exchange, position, run


def test_linear_long_closed_at_binance_faq_liquidation_price_leaves_the_maintenance_margin():
    """Binance margin-ratio FAQ (margin-mechanics.md §1.3 [P]): wallet 500 USDT, long 0.02 BTC
    at 50,000 cross, LP = 25,100.40. At LP the margin balance equals the maintenance margin
    0.02 × 25,100.40 × 0.4 % = 2.008032 USDT: closing there realizes −497.992 and leaves 2.008
    (https://binance.com/en/support/faq/25edcd7fe0e544839d0847b8cbb2e400)."""
    log = exchange("BTCUSDT-PERP", accounts={"alice": {"USDT": "500"}, "bob": {"USDT": "5000"}})
    log.fill("BTCUSDT-PERP", "50000", "0.02", buyer="alice", seller="bob")
    log.fill("BTCUSDT-PERP", "25100.4", "0.02", buyer="bob", seller="alice")
    engine, outputs = run(log.events)
    assert outputs == []
    assert balance(engine, "alice", "USDT") == "2.008"
    assert abs(2.008 - 0.02 * 25100.40 * 0.004) < 0.02 * 0.1  # within one tick of MM
    assert balance(engine, "bob", "USDT") == "5497.992"
    assert position(engine, "alice", "BTCUSDT-PERP") is None


def test_linear_long_absorbs_bybit_published_150_usdt_loss_down_to_maintenance():
    """Bybit "Maintenance Margin (USDT Contract)" (margin-mechanics.md §4.1 [P]): 1 BTC at
    10,000 with 50x: IM 200, MM 50, the position can absorb a 150 USDT unrealized loss."""
    log = exchange("BTCUSDT-PERP", accounts={"alice": {"USDT": "200"}, "bob": {"USDT": "1000"}})
    log.fill("BTCUSDT-PERP", "10000", "1", buyer="alice", seller="bob")
    log.fill("BTCUSDT-PERP", "9850", "1", buyer="bob", seller="alice")
    engine, _ = run(log.events)
    assert balance(engine, "alice", "USDT") == "50"


def test_linear_cross_matches_bitmex_bankruptcy_and_liquidation_prices():
    """BitMEX isolated/cross examples (margin-mechanics.md §7 [P]): wallet 10,000 USDT, buy 20
    ETH at 1,000 cross: bankruptcy 500 (closing there leaves exactly 0), liquidation 510
    (leaves the 1 % maintenance margin, 200)."""
    log = exchange("ETHUSDT-260327", accounts={"a": {"USDT": "10000"}, "b": {"USDT": "50000"}})
    log.fill("ETHUSDT-260327", "1000", "20", buyer="a", seller="b")
    log.fill("ETHUSDT-260327", "510", "20", buyer="b", seller="a")
    engine, _ = run(log.events)
    assert balance(engine, "a", "USDT") == "200"

    log = exchange("ETHUSDT-260327", accounts={"a": {"USDT": "10000"}, "b": {"USDT": "50000"}})
    log.fill("ETHUSDT-260327", "1000", "20", buyer="a", seller="b")
    log.fill("ETHUSDT-260327", "500", "20", buyer="b", seller="a")
    engine, _ = run(log.events)
    assert balance(engine, "a", "USDT") == "0"
    assert balance(engine, "b", "USDT") == "60000"


def test_inverse_notional_and_maintenance_match_binance_coin_m_example():
    """Binance COIN-M FAQ (margin-mechanics.md §2 [P]): 100 BTCUSD contracts at mark 25,000 →
    notional 0.4 BTC; MM = 0.4 × 0.4 % = 0.0016 BTC."""
    log = exchange("BTCUSD-PERP")
    engine, _ = run(log.events)
    ledger = engine.component("ledger")
    math: ContractMath = ledger.contract_math("BTCUSD-PERP")
    notional = math.inverse_value(100, 250_000, PAYOUT)  # price 25,000.0 at scale 1
    assert math.to_settle(notional) == 40_000_000  # 0.4 BTC
    assert math.to_settle(notional * 4 // 1000) == 160_000  # 0.0016 BTC


def test_inverse_long_cannot_close_beyond_bybit_bankruptcy_price():
    """Bybit inverse cross example (margin-mechanics.md §4.1 [P]): balance 0.5 BTC, long 10,000
    contracts at 8,000, taker fee 0.075 %: bankruptcy price 1.00075 × 10000 /
    (10000/8000 + 0.5) = 5,718.57. Closing at 5,718.5 (beyond it) cannot be paid and is
    refused; at 5,719.0 it leaves 0.5 − 0.49855745 (PnL, floor) − 0.00131142 (fee, ceil)."""
    log = exchange(accounts={"a": {"BTC": "0.5"}, "b": {"BTC": "10"}})
    log.listing("BTCUSD-PERP", tick_size="0.5", multiplier="1")
    log.fill("BTCUSD-PERP", "8000", "10000", buyer="a", seller="b")
    log.fill(
        "BTCUSD-PERP",
        "5718.5",
        "10000",
        buyer="b",
        seller="a",
        taker_side="sell",
        taker_fee_rate="0.00075",
    )
    engine, outputs = run(log.events)
    assert [o.reason for o in outputs] == [RejectReason.INSUFFICIENT_BALANCE]
    assert outputs[0].field == "seller"

    log.events.pop()
    log.seq -= 1
    log.fill(
        "BTCUSD-PERP",
        "5719",
        "10000",
        buyer="b",
        seller="a",
        taker_side="sell",
        taker_fee_rate="0.00075",
    )
    engine, outputs = run(log.events)
    assert outputs == []
    assert balance(engine, "a", "BTC") == "0.00013113"
    # the maker's gain 10000 × (1/8000 − 1/5719) = 0.4985574401…, credited rounded down:
    # the exchange keeps the unit between the two legs
    assert balance(engine, "b", "BTC") == "10.49855744"


def test_inverse_partial_close_uses_harmonic_entry_and_rounds_for_the_exchange():
    """Binance COIN-M PnL ``N × (1/entry − 1/exit)`` (margin-mechanics.md §2): 100 contracts
    long at 67,000, 40 sold at 68,000: 4,000 × (1/67000 − 1/68000) = 0.000877963125…
    BTC, credited as 0.00087796 (floor)."""
    log = exchange("BTCUSD-PERP", accounts={"a": {"BTC": "1"}, "b": {"BTC": "1"}})
    log.fill("BTCUSD-PERP", "67000", "100", buyer="a", seller="b")
    log.fill("BTCUSD-PERP", "68000", "40", buyer="b", seller="a")
    engine, _ = run(log.events)
    held = position(engine, "a", "BTCUSD-PERP")
    assert held.qty == 60
    assert held.realized_pnl == 87_796
    assert balance(engine, "a", "BTC") == "1.00087796"
    # the short side loses the same amount rounded against it
    assert balance(engine, "b", "BTC") == "0.99912203"


def test_linear_partial_close_and_flip_with_fees():
    """Hand-worked: buy 1 @ 50,000 and 1 @ 52,000 (entry 51,000), sell 0.5 @ 53,000 (+1,000),
    sell 3 @ 50,000 (−1,500 on the remaining 1.5, then short 1.5 @ 50,000). Taker 0.05 %:
    fees 25 + 26 + 13.25 + 75 = 139.25."""
    log = exchange("BTCUSDT-PERP", accounts={"a": {"USDT": "10000"}, "mm": {"USDT": "100000"}})
    fees = {"taker_fee_rate": "0.0005"}
    log.fill("BTCUSDT-PERP", "50000", "1", buyer="a", seller="mm", **fees)
    log.fill("BTCUSDT-PERP", "52000", "1", buyer="a", seller="mm", **fees)
    log.fill("BTCUSDT-PERP", "53000", "0.5", buyer="mm", seller="a", taker_side="sell", **fees)
    log.fill("BTCUSDT-PERP", "50000", "3", buyer="mm", seller="a", taker_side="sell", **fees)
    engine, outputs = run(log.events)
    assert outputs == []
    held = position(engine, "a", "BTCUSDT-PERP")
    assert held.qty == -1500  # −1.5 BTC at lot 0.001
    assert held.entry_value == -75_000 * 10**4  # short 1.5 @ 50,000 (value scale 4)
    assert held.realized_pnl == -500 * 10**8
    assert balance(engine, "a", "USDT") == "9360.75"  # 10,000 − 500 − 139.25
    assert balance(engine, "sys:fees", "USDT") == "139.25"


def test_linear_partial_close_rounds_removed_cost_up_for_longs_and_shorts():
    """Two lots at 50,000.0 and 50,000.1 average 50,000.05: closing one at 50,000.0 realizes
    exactly −0.00005, credited as −0.0001 (CREDIT rounds towards minus infinity); the
    remaining cost basis keeps the exact rest, so nothing drifts."""
    log = exchange("BTCUSDT-PERP", accounts={"a": {"USDT": "1000"}, "b": {"USDT": "1000"}})
    log.fill("BTCUSDT-PERP", "50000", "0.001", buyer="a", seller="b")
    log.fill("BTCUSDT-PERP", "50000.1", "0.001", buyer="a", seller="b")
    log.fill("BTCUSDT-PERP", "50000", "0.001", buyer="b", seller="a")
    engine, _ = run(log.events)
    long_leg, short_leg = (
        position(engine, "a", "BTCUSDT-PERP"),
        position(engine, "b", "BTCUSDT-PERP"),
    )
    assert long_leg.realized_pnl == -10_000  # −0.0001 USDT at 8 decimals
    assert long_leg.entry_value == 500_000  # 0.001 × 50,000.0 left
    # the short (avg 50,000.05) buying one lot back at 50,000.0 gains exactly 0.00005; its
    # removed cost is rounded towards zero, so it realizes 0 now and keeps the 50,000.1 lot
    assert short_leg.realized_pnl == 0
    assert short_leg.entry_value == -500_001


def test_funding_is_exact_and_dust_stays_with_the_settlement_account():
    """A linear payment that divides exactly (1 BTC × 67,100 × 0.01 % = 6.71) and an inverse
    one that does not (100 × 100 / 67,050 × 0.005 % = 0.0000074571… BTC: the payer is charged
    0.00000746, the receiver credited 0.00000745, dust 1 unit)."""
    log = exchange(
        "BTCUSDT-PERP",
        "BTCUSD-PERP",
        accounts={"l": {"USDT": "1000", "BTC": "1"}, "s": {"USDT": "1000", "BTC": "1"}},
    )
    log.fill("BTCUSDT-PERP", "67000", "1", buyer="l", seller="s")
    log.fill("BTCUSD-PERP", "67000", "100", buyer="l", seller="s")
    log.make(FundingPayment, symbol="BTCUSDT-PERP", rate="0.0001", mark_price="67100")
    log.make(FundingPayment, symbol="BTCUSD-PERP", rate="-0.00005", mark_price="67050")
    engine, outputs = run(log.events)
    linear, inverse = outputs
    assert (linear.paid, linear.received, linear.dust) == (671_000_000, 671_000_000, 0)
    assert (inverse.paid, inverse.received, inverse.dust) == (746, 745, 1)
    assert balance(engine, "l", "USDT") == "993.29"
    assert balance(engine, "s", "USDT") == "1006.71"
    assert balance(engine, "s", "BTC") == "0.99999254"  # the short pays when the rate is < 0
    assert balance(engine, "l", "BTC") == "1.00000745"
    assert balance(engine, "sys:settlement", "BTC") == "0.00000001"


def test_inverse_option_pays_premium_at_fill_and_intrinsic_over_delivery_price_at_expiry():
    """Deribit-style BTC call, strike 70,000, settled in BTC: premium 0.025 BTC at the fill;
    at 71,000 the payoff is 1,000 / 71,000 = 0.0140845070… BTC: the long is credited
    0.01408450 and the short charged 0.01408451."""
    log = exchange("BTC-27MAR26-70000-C", accounts={"a": {"BTC": "1"}, "b": {"BTC": "1"}})
    log.fill("BTC-27MAR26-70000-C", "0.025", "1", buyer="a", seller="b")
    log.make(Settlement, symbol="BTC-27MAR26-70000-C", price="71000", ts=EXPIRY)
    engine, outputs = run(log.events)
    assert (outputs[0].paid_to_users, outputs[0].charged_to_users) == (1_408_450, 1_408_451)
    assert balance(engine, "a", "BTC") == "0.9890845"  # 1 − 0.025 + 0.0140845
    assert balance(engine, "b", "BTC") == "1.01091549"
    assert balance(engine, "sys:settlement", "BTC") == "0.00000001"


def test_linear_option_put_expiring_out_of_the_money_pays_nothing():
    log = exchange(
        "ETHUSDC-27MAR26-3000-C", accounts={"a": {"USDT": "1000"}, "b": {"USDT": "1000"}}
    )
    log.fill("ETHUSDC-27MAR26-3000-C", "120.5", "2", buyer="a", seller="b")
    log.make(Settlement, symbol="ETHUSDC-27MAR26-3000-C", price="3100", ts=EXPIRY)
    engine, outputs = run(log.events)
    # premium 2 × 120.5 = 241; payoff 2 × (3,100 − 3,000) = 200
    assert balance(engine, "a", "USDT") == "959"
    assert balance(engine, "b", "USDT") == "1041"
    assert outputs[0].positions == 2


def test_spot_fill_moves_both_assets_and_charges_fees_in_quote():
    """Buy 0.5 BTC at 67,000 with 0.1 % fees: the buyer pays 33,500 + 33.5, the seller
    receives 33,500 − 33.5."""
    log = exchange("BTCUSDT", accounts={"a": {"USDT": "40000"}, "b": {"BTC": "1"}})
    log.fill(
        "BTCUSDT",
        "67000",
        "0.5",
        buyer="a",
        seller="b",
        maker_fee_rate="0.001",
        taker_fee_rate="0.001",
    )
    engine, _ = run(log.events)
    assert balance(engine, "a", "USDT") == "6466.5"
    assert balance(engine, "a", "BTC") == "0.5"
    assert balance(engine, "b", "BTC") == "0.5"
    assert balance(engine, "b", "USDT") == "33466.5"
    assert balance(engine, "sys:fees", "USDT") == "67"


def test_linear_future_settles_at_delivery_price():
    log = exchange("ETHUSDT-260327", accounts={"a": {"USDT": "1000"}, "b": {"USDT": "1000"}})
    log.fill("ETHUSDT-260327", "3500", "1", buyer="a", seller="b")
    log.make(Settlement, symbol="ETHUSDT-260327", price="3612.34", ts=EXPIRY)
    engine, outputs = run(log.events)
    assert balance(engine, "a", "USDT") == "1112.34"
    assert balance(engine, "b", "USDT") == "887.66"
    assert position(engine, "a", "ETHUSDT-260327") is None
    assert not any(isinstance(o, Rejected) for o in outputs)
