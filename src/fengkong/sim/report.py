"""The report of a crash simulation: one self-contained HTML page and a JSON summary.

Plots (matplotlib, embedded as PNG): the path's price and the BTCUSDT mark; liquidations per
minute (partial and takeovers); the insurance fund per settlement asset; ADL closes per
minute; accounts with positions by cross margin ratio (MM / equity) over time. The summary
table is :attr:`fengkong.sim.run.SimResult.summary`, which is also written as JSON.
"""

from __future__ import annotations

import html
import itertools
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fengkong.analytics.report import figure_html, write_report
from fengkong.sim.run import RATIO_BUCKETS, SimResult

__all__ = ["write_outputs"]


def _minutes(series: dict) -> np.ndarray:
    return np.asarray(series["minute"], dtype=float)


def _per_minute(cumulative: list[int]) -> np.ndarray:
    counts = np.asarray(cumulative, dtype=float)
    return np.diff(counts, prepend=0.0)


def _price_figure(result: SimResult) -> str:
    s = result.series
    figure = Figure(figsize=(10, 3.2))
    axis = figure.subplots()
    axis.plot(_minutes(s), s["path"], label=f"path ({result.summary['scenario']})", lw=1)
    twin = axis.twinx()
    twin.plot(_minutes(s), s["mark"], label="BTCUSDT-PERP mark (simulated)", color="C1", lw=1)
    axis.set_xlabel("minutes from start")
    axis.set_ylabel("path price")
    twin.set_ylabel("mark")
    figure.legend(loc="upper right")
    return figure_html(figure)


def _liquidations_figure(result: SimResult) -> str:
    s = result.series
    figure = Figure(figsize=(10, 3.2))
    axis = figure.subplots()
    minutes = _minutes(s)
    axis.bar(minutes, _per_minute(s["takeover"]), width=1.0, label="takeovers", color="C3")
    axis.bar(minutes, _per_minute(s["partial"]), width=1.0, label="partial", color="C2",
             bottom=_per_minute(s["takeover"]))  # fmt: skip
    axis.set_xlabel("minutes from start")
    axis.set_ylabel("per minute")
    axis.legend()
    return figure_html(figure)


def _fund_figure(result: SimResult) -> str:
    s = result.series
    figure = Figure(figsize=(10, 3.2))
    usdt, btc = figure.subplots(1, 2)
    usdt.plot(_minutes(s), s["fund_usdt"], color="C0")
    usdt.set_title("insurance fund, USDT")
    btc.plot(_minutes(s), s["fund_btc"], color="C1")
    btc.set_title("insurance fund, BTC")
    for axis in (usdt, btc):
        axis.set_xlabel("minutes from start")
    return figure_html(figure)


def _adl_figure(result: SimResult) -> str:
    s = result.series
    figure = Figure(figsize=(10, 2.8))
    axis = figure.subplots()
    axis.bar(_minutes(s), _per_minute(s["adl"]), width=1.0, color="C4")
    axis.set_xlabel("minutes from start")
    axis.set_ylabel("ADL closes per minute")
    return figure_html(figure)


def _ratio_figure(result: SimResult) -> str:
    s = result.series
    buckets = np.asarray(s["ratio_buckets"], dtype=float).T
    edges = (0.0, *RATIO_BUCKETS)
    labels = [f"{lo:.0%}–{hi:.0%}" for lo, hi in itertools.pairwise(edges)]
    labels.append(f"≥ {RATIO_BUCKETS[-1]:.0%} (liquidating)")
    figure = Figure(figsize=(10, 3.2))
    axis = figure.subplots()
    for row, label in zip(buckets, labels, strict=True):
        axis.plot(_minutes(s), np.maximum(row, 0.8), label=label, lw=1.2)
    axis.set_yscale("log")
    axis.set_xlabel("minutes from start")
    axis.set_ylabel("accounts (log)")
    axis.legend(loc="lower left", fontsize=8, ncol=3)
    return figure_html(figure)


def _summary_table(summary: dict) -> str:
    rows = []
    for key, value in summary.items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(text)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def write_outputs(result: SimResult, out: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``summary.json`` into ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(result.summary, indent=2, sort_keys=False) + "\n")
    kind = "synthetic path" if result.summary["synthetic"] else "real market data"
    title = f"fengkong simulate: {result.summary['scenario']} ({kind})"
    sections = [
        ("Price and mark", _price_figure(result)),
        ("Liquidations per minute", _liquidations_figure(result)),
        ("Insurance fund", _fund_figure(result)),
        ("Auto-deleveraging", _adl_figure(result)),
        ("Accounts by margin ratio", _ratio_figure(result)),
        ("Summary", _summary_table(result.summary)),
    ]
    report_path = write_report(out / "report.html", title, sections)
    return report_path, summary_path
