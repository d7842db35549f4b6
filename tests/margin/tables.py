"""Published tier tables used by the margin and gate tests (margin-mechanics.md §1.1)."""

from __future__ import annotations

from fengkong.margin.tiers import TierTable

BINANCE_2021_URL = (
    "https://www.binance.com/tr/support/announcement/86cf9aa472574b8cb2e05bb751c2a9a6"
)
# BTCUSDT, official announcement of 2021-03-18: (floor, cap, max leverage, MMR); cum derived
BTCUSDT_2021 = [
    ("0", "50000", "125", "0.004"),
    ("50000", "250000", "100", "0.005"),
    ("250000", "1000000", "50", "0.01"),
    ("1000000", "10000000", "20", "0.025"),
    ("10000000", "20000000", "10", "0.05"),
    ("20000000", "50000000", "5", "0.1"),
    ("50000000", "100000000", "4", "0.125"),
    ("100000000", "200000000", "3", "0.15"),
    ("200000000", "300000000", "2", "0.25"),
    ("300000000", "500000000", "1", "0.5"),
]
BTCUSDT_2021_CUM = [
    "0", "50", "1300", "16300", "266300", "1266300", "2516300", "5016300", "25016300", "100016300",
]  # fmt: skip

# BTCUSDT /fapi/v1/leverageBracket snapshot (third-party capture, 2023-11-28), cum as published
API_SNAPSHOT_URL = (
    "https://github.com/boolean404/heikin-ashi-trading-bot/blob/main/json/"
    "fapiPrivate_get_leverage_bracket.py"
)
BTCUSDT_API = [
    ("0", "50000", "125", "0.004", "0"),
    ("50000", "250000", "100", "0.005", "50"),
    ("250000", "3000000", "50", "0.01", "1300"),
    ("3000000", "20000000", "20", "0.025", "46300"),
    ("20000000", "40000000", "10", "0.05", "546300"),
    ("40000000", "100000000", "5", "0.10", "2546300"),
    ("100000000", "120000000", "4", "0.125", "5046300"),
    ("120000000", "200000000", "3", "0.15", "8046300"),
    ("200000000", "300000000", "2", "0.25", "28046300"),
    ("300000000", "500000000", "1", "0.50", "103046300"),
]


def rows(table, with_cum: bool = False) -> list[dict[str, str]]:
    keys = ("floor", "cap", "max_leverage", "mmr", "cum")
    return [dict(zip(keys, row[: 5 if with_cum else 4], strict=False)) for row in table]


def btcusdt_2021(scale: int = 8) -> TierTable:
    return TierTable.parse(rows(BTCUSDT_2021), scale)


def coin_table(scale: int = 8) -> TierTable:
    """A coin-margined table (BTC notional) for property tests: Binance-like rates, not a
    published table."""
    return TierTable.parse(
        rows(
            [
                ("0", "5", "125", "0.004"),
                ("5", "10", "100", "0.005"),
                ("10", "50", "50", "0.01"),
                ("50", "200", "20", "0.025"),
                ("200", "1000", "10", "0.05"),
            ]
        ),
        scale,
    )
