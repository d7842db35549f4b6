"""Self-contained HTML reports with plots (matplotlib PNGs embedded as base64).

Plots: the P&L distribution with VaR and ES marked; VaR forecasts against realized P&L with
the exceptions marked over time; stress P&L per scenario. Tables are the same DataFrames the
command line prints. Figures are drawn on matplotlib's object API (no pyplot state).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "Section",
    "backtest_figure",
    "figure_html",
    "pnl_distribution_figure",
    "stress_figure",
    "table_html",
    "write_report",
]

Section = tuple[str, str]  # (heading, HTML body)


def figure_html(figure: Figure) -> str:
    """``figure`` as an ``<img>`` with its PNG embedded (base64): the page needs no files."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{encoded}">'


def pnl_distribution_figure(pnl: np.ndarray, risk: pd.DataFrame, title: str) -> str:
    """Histogram of scenario P&L with each confidence's −VaR and −ES marked."""
    figure = Figure(figsize=(9, 4.2))
    axis = figure.subplots()
    axis.hist(pnl, bins=min(120, max(20, pnl.size // 20)), color="#8aa4c8", edgecolor="none")
    for row, color in zip(risk.itertuples(), ("#e0a030", "#d05030", "#901010"), strict=False):
        axis.axvline(-row.var, color=color, linestyle="-", label=f"VaR {row.confidence:.1%}")
        axis.axvline(-row.es, color=color, linestyle="--", label=f"ES {row.confidence:.1%}")
    axis.set_xlabel("P&L (USD)")
    axis.set_ylabel("scenarios")
    axis.set_title(title)
    axis.legend(fontsize=8)
    return figure_html(figure)


def backtest_figure(forecasts: pd.DataFrame, method: str, title: str) -> str:
    """Realized P&L, −VaR forecasts, and the exceptions (loss beyond VaR) over time."""
    figure = Figure(figsize=(10, 4.2))
    axis = figure.subplots()
    axis.plot(forecasts.index, forecasts["pnl"], color="#9aa0a8", linewidth=0.6, label="P&L")
    column = f"var_{method}"
    axis.plot(forecasts.index, -forecasts[column], color="#2050a0", linewidth=1.0, label="−VaR")
    hit = forecasts["pnl"] < -forecasts[column]
    axis.scatter(
        forecasts.index[hit],
        forecasts["pnl"][hit],
        color="#d02020",
        s=14,
        zorder=3,
        label=f"exceptions ({int(hit.sum())})",
    )
    axis.set_ylabel("USD")
    axis.set_title(title)
    axis.legend(fontsize=8)
    return figure_html(figure)


def stress_figure(results: pd.DataFrame, title: str) -> str:
    """Horizontal bars of portfolio P&L per stress scenario (losses in red)."""
    figure = Figure(figsize=(9, 0.35 * len(results) + 1.2))
    axis = figure.subplots()
    colors = np.where(results["pnl"] < 0, "#c03030", "#3a8a50")
    axis.barh(results.index, results["pnl"], color=colors)
    axis.invert_yaxis()
    axis.axvline(0.0, color="black", linewidth=0.6)
    axis.set_xlabel("P&L (USD)")
    axis.set_title(title)
    return figure_html(figure)


def table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda x: f"{x:,.4g}" if abs(x) < 1 else f"{x:,.2f}")


def write_report(path: Path, title: str, sections: Sequence[Section]) -> Path:
    """Write one HTML page with ``sections`` (heading, HTML) under ``title``."""
    body = "\n".join(f"<h2>{html.escape(h)}</h2>\n{content}" for h, content in sections)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}img{max-width:100%}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>"
    )
    path = Path(path)
    path.write_text(page)
    return path
