"""Prices aligned across assets, with missing bars handled and reported, and their returns.

Log return ``r_t = ln(P_t / P_{t-1})``; simple return ``R_t = P_t / P_{t-1} − 1 = e^{r_t} − 1``.

Alignment keeps the bars on which *every* asset has a price, from the first bar on which the
last asset is listed. A return whose two prices are further apart than one bar (because bars
are missing in between) spans several periods; ``gap_policy="drop"`` removes it from the
return series (the default: a 1-day scenario set should hold 1-day moves only),
``gap_policy="keep"`` keeps it as the move of the bar after the gap. Either way the report
names every missing bar and every return that spans a gap.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "AlignedPrices",
    "AlignmentReport",
    "GapPolicy",
    "ReturnKind",
    "align_prices",
    "log_returns",
    "simple_returns",
]


class GapPolicy(enum.StrEnum):
    DROP = "drop"
    KEEP = "keep"


class ReturnKind(enum.StrEnum):
    LOG = "log"
    SIMPLE = "simple"


@dataclass(frozen=True)
class AlignmentReport:
    """What alignment found and did.

    ``coverage``: per asset its first and last bar, bars held, and bars missing inside its own
    span. ``missing``: one row per (asset, missing bar). ``gap_returns``: the bars whose return
    spans missing bars, and whether the policy dropped them.
    """

    frequency: pd.Timedelta
    policy: GapPolicy
    common_start: pd.Timestamp
    end: pd.Timestamp
    coverage: pd.DataFrame
    missing: pd.DataFrame
    gap_returns: pd.DataFrame

    def describe(self) -> str:
        """One paragraph for logs and reports."""
        n_missing = len(self.missing)
        days = sorted({ts.isoformat() for ts in self.missing["bar"]}) if n_missing else []
        shown = ", ".join(days[:8]) + (" …" if len(days) > 8 else "")
        return (
            f"aligned {len(self.coverage)} assets on {self.frequency} bars from "
            f"{self.common_start.isoformat()} to {self.end.isoformat()}; "
            f"{n_missing} missing (asset, bar) pairs on {len(days)} bars"
            + (f" ({shown})" if days else "")
            + f"; {len(self.gap_returns)} returns span a gap ({self.policy.value})"
        )


@dataclass(frozen=True)
class AlignedPrices:
    """Prices on the common bars and the report of how they were aligned."""

    prices: pd.DataFrame
    report: AlignmentReport

    def returns(self, kind: ReturnKind | str = ReturnKind.LOG) -> pd.DataFrame:
        """Returns of the aligned prices, gap-spanning ones handled per the report's policy."""
        kind = ReturnKind(kind)
        returns = (
            log_returns(self.prices) if kind is ReturnKind.LOG else simple_returns(self.prices)
        )
        if self.report.policy is GapPolicy.DROP and len(self.report.gap_returns):
            returns = returns.drop(index=self.report.gap_returns["bar"])
        return returns


def log_returns(prices: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """``ln(P_t / P_{t-1})`` between consecutive rows; the first row is dropped."""
    return np.log(prices / prices.shift(1)).iloc[1:]


def simple_returns(prices: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """``P_t / P_{t-1} − 1`` between consecutive rows; the first row is dropped."""
    return (prices / prices.shift(1) - 1.0).iloc[1:]


def _utc(stamp: str | pd.Timestamp) -> pd.Timestamp:
    value = pd.Timestamp(stamp)
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")


def align_prices(
    prices: pd.DataFrame,
    frequency: str | pd.Timedelta = "1D",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    gap_policy: GapPolicy | str = GapPolicy.DROP,
) -> AlignedPrices:
    """Align ``prices`` (one column per asset, NaN where absent) on their common bars.

    ``start`` / ``end`` restrict the window (inclusive); bars are expected every ``frequency``.
    Raises ``ValueError`` naming the asset when an asset has no price in the window.
    """
    step = pd.Timedelta(frequency)
    policy = GapPolicy(gap_policy)
    window = prices.sort_index()
    if start is not None:
        window = window.loc[window.index >= _utc(start)]
    if end is not None:
        window = window.loc[window.index <= _utc(end)]
    coverage_rows = []
    missing_rows = []
    for asset in window.columns:
        held = window[asset].dropna()
        if held.empty:
            raise ValueError(f"prices[{asset!r}]: no price between {start} and {end}")
        if not np.all(held.to_numpy() > 0.0):
            bad = held[held <= 0.0].index[0]
            raise ValueError(f"prices[{asset!r}][{bad.isoformat()}]={held[bad]!r}: must be > 0")
        grid = pd.date_range(held.index[0], held.index[-1], freq=step)
        absent = grid.difference(held.index)
        missing_rows.extend({"asset": asset, "bar": bar} for bar in absent)
        coverage_rows.append(
            {
                "asset": asset,
                "first": held.index[0],
                "last": held.index[-1],
                "bars": len(held),
                "missing_inside_span": len(absent),
            }
        )
    coverage = pd.DataFrame(coverage_rows).set_index("asset")
    common_start = coverage["first"].max()
    common = window.loc[window.index >= common_start].dropna(how="any")
    spacing = common.index.to_series().diff()
    spans = spacing[spacing > step]
    gap_returns = pd.DataFrame(
        {
            "bar": spans.index,
            "previous_bar": (spans.index - spans).to_numpy(),
            "periods": (spans / step).to_numpy(),
            "dropped": policy is GapPolicy.DROP,
        }
    )
    report = AlignmentReport(
        frequency=step,
        policy=policy,
        common_start=common_start,
        end=common.index[-1],
        coverage=coverage,
        missing=pd.DataFrame(missing_rows, columns=["asset", "bar"]),
        gap_returns=gap_returns,
    )
    return AlignedPrices(prices=common, report=report)
