"""``fengkong risk``: VaR / ES, VaR backtests and stress tests from the command line.

Every command prints Rich tables and can write a self-contained HTML report with plots.
Market data is read from ``--data-dir`` (default ``$FENGKONG_DATA`` or ``../shared/data``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

risk_app = typer.Typer(
    name="risk",
    help="Risk measurement: VaR and expected shortfall, VaR backtests, stress tests.",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Market data folder (default $FENGKONG_DATA, ../shared/data)."),
]
ReportPath = Annotated[
    Path | None, typer.Option("--report", help="Also write an HTML report with plots here.")
]


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _frame_table(frame, title: str, money: tuple[str, ...] = (), pct: tuple[str, ...] = ()):
    from rich.table import Table

    table = Table(title=title)
    for level in frame.index.names:
        table.add_column(level or "")
    for column in frame.columns:
        table.add_column(str(column), justify="right")
    for index, row in frame.iterrows():
        cells = [str(i) for i in index] if isinstance(index, tuple) else [str(index)]
        for column, value in row.items():
            if column in money:
                cells.append(_money(value))
            elif column in pct:
                cells.append(f"{value:+.2%}")
            elif isinstance(value, float):
                cells.append(f"{value:.4g}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    return table


def _fail(console, error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {error}")
    return typer.Exit(2)


@risk_app.command("var")
def var_command(
    portfolios: Annotated[
        list[Path],
        typer.Argument(help="Portfolio YAML file(s) (examples/portfolio.yaml); several: a book."),
    ],
    method: Annotated[str, typer.Option(help="hs | ewma | mc | fhs")] = "hs",
    confidence: Annotated[
        list[float] | None, typer.Option(help="Confidence level; repeat for several.")
    ] = None,
    horizon: Annotated[int, typer.Option(help="Horizon in days: 1 or 10.")] = 1,
    window: Annotated[
        int, typer.Option(help="Days of history for hs / fhs (and the t fit).")
    ] = 1000,
    dist: Annotated[
        str | None,
        typer.Option(help="Innovations for ewma / mc: normal | t (default: ewma normal, mc t)."),
    ] = None,
    dof: Annotated[
        float | None, typer.Option(help="Student-t degrees of freedom (default: fitted).")
    ] = None,
    paths: Annotated[int, typer.Option(help="Monte Carlo / FHS 10-day paths.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed (mc, fhs 10-day).")] = 1,
    data_dir: DataDir = None,
    report: ReportPath = None,
) -> None:
    """VaR and expected shortfall (positive numbers are losses, USD).

    With several files, every portfolio and their total are valued on the same scenarios in
    one array computation (the total shows the diversification across them).
    """
    import dataclasses

    from rich.console import Console

    from fengkong.analytics.history import resolve_data_dir
    from fengkong.analytics.measure import (
        DEFAULT_CONFIDENCES,
        Method,
        RiskSettings,
        load_market_history,
        measure,
        measure_book,
    )
    from fengkong.analytics.parametric import Innovation
    from fengkong.analytics.portfolio import load_portfolio

    console = Console()
    try:
        books = [load_portfolio(path) for path in portfolios]
        settings = RiskSettings(
            method=Method(method),
            confidences=tuple(confidence) if confidence else DEFAULT_CONFIDENCES,
            horizon_days=horizon,
            window=window,
            innovation=Innovation(dist) if dist else None,
            dof=dof,
            paths=paths,
            seed=seed,
        )
        days = {b.as_of for b in books}
        if len(days) != 1:
            raise ValueError(f"portfolios are valued on different as_of days: {sorted(days)}")
        underlyings = tuple(dict.fromkeys(a for b in books for a in b.underlyings))
        history = load_market_history(resolve_data_dir(data_dir), underlyings, books[0].as_of)
        with console.status(f"{settings.method.value} VaR"):
            if len(books) == 1:
                single = measure(books[0], history, settings)
                shown, pnl, fitted = single.table.set_index("confidence"), single.pnl, single.dof
                exposures = single.exposures.to_frame()
            else:
                total = dataclasses.replace(
                    books[0],
                    name="total (all files)",
                    positions=tuple(p for b in books for p in b.positions),
                )
                book = measure_book([*books, total], history, settings)
                shown = book.table.set_index(["portfolio", "confidence"])
                pnl, fitted = None, book.dof
                exposures = book.exposures.T
    except (ValueError, FileNotFoundError) as error:
        raise _fail(console, error) from error
    console.print(history.report.describe())
    exposures.index.name = "asset"
    console.print(
        _frame_table(exposures, "delta exposure (USD per 100% move)", money=tuple(exposures))
    )
    name = books[0].name if len(books) == 1 else f"{len(books)} portfolios"
    title = f"{name} as of {books[0].as_of.date()}: {settings.method.value} VaR / ES"
    if fitted is not None:
        title += f" (Student-t, {fitted:.2f} dof)"
    console.print(_frame_table(shown, title, money=("var", "es")))
    if report is not None:
        from fengkong.analytics.report import pnl_distribution_figure, table_html, write_report

        sections = [("VaR and ES", table_html(shown)), ("exposures", table_html(exposures))]
        if pnl is not None and pnl.size:
            figure = pnl_distribution_figure(pnl, shown.reset_index(), f"{title}: scenario P&L")
            sections.append(("P&L distribution", figure))
        write_report(report, title, sections)
        console.print(f"report written to {report}")


@risk_app.command("backtest")
def backtest_command(
    portfolio: Annotated[
        Path | None,
        typer.Argument(help="Portfolio file: back-test its delta exposures (linear books)."),
    ] = None,
    assets: Annotated[
        str, typer.Option(help="Without a portfolio: comma-separated assets, equal USD weight.")
    ] = "BTC",
    notional: Annotated[float, typer.Option(help="Total USD of the equal-weight book.")] = 1e6,
    method: Annotated[
        list[str] | None, typer.Option(help="ewma | hs | fhs; repeat (default all three).")
    ] = None,
    confidence: Annotated[float, typer.Option(help="VaR confidence.")] = 0.99,
    window: Annotated[int, typer.Option(help="Days of history behind each forecast.")] = 250,
    refit_every: Annotated[int, typer.Option(help="FHS: re-estimate GARCH every N days.")] = 20,
    start: Annotated[str | None, typer.Option(help="First day judged (YYYY-MM-DD).")] = None,
    data_dir: DataDir = None,
    report: ReportPath = None,
    csv: Annotated[
        Path | None, typer.Option(help="Write the daily P&L and forecasts as CSV.")
    ] = None,
) -> None:
    """Rolling 1-day VaR backtest on real daily history: Kupiec, Christoffersen, traffic light."""
    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from fengkong.analytics.history import load_daily_closes, resolve_data_dir
    from fengkong.analytics.measure import Method, load_market_history
    from fengkong.analytics.portfolio import load_portfolio
    from fengkong.analytics.returns import align_prices
    from fengkong.analytics.rolling import ROLLING_METHODS, backtest_summary, rolling_var

    console = Console()
    try:
        folder = resolve_data_dir(data_dir)
        methods = [Method(m) for m in method] if method else list(ROLLING_METHODS)
        if portfolio is not None:
            from fengkong.analytics.instruments import InstrumentTable
            from fengkong.analytics.revaluation import delta_exposures

            book = load_portfolio(portfolio)
            if book.has_options:
                raise ValueError("backtest holds delta exposures constant: options not supported")
            history = load_market_history(folder, book.underlyings, book.as_of)
            table = InstrumentTable.build(
                book.instruments(history.closes.to_dict()), tuple(history.log_returns.columns)
            )
            exposures = delta_exposures(table, book.quantities())
            returns = history.log_returns
            label = book.name
        else:
            names = [a.strip().upper() for a in assets.split(",") if a.strip()]
            aligned = align_prices(load_daily_closes(folder, names))
            console.print(aligned.report.describe())
            returns = aligned.returns("log")
            exposures = np.full(len(names), notional / len(names))
            held = "+".join(names) if len(names) == 1 else f"equal-weight {'+'.join(names)}"
            label = f"{held} ({_money(notional)} USD)"
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            days = max(len(returns) - window, 0)
            task = progress.add_task("FHS forecasts", total=days if Method.FHS in methods else 0)
            forecasts = rolling_var(
                returns,
                exposures,
                confidence,
                methods,
                window,
                refit_every,
                progress=lambda: progress.advance(task),
            )
        if start is not None:
            forecasts = forecasts.loc[forecasts.index >= start]
        summary = backtest_summary(forecasts, confidence)
    except (ValueError, FileNotFoundError) as error:
        raise _fail(console, error) from error
    title = f"{label}: {confidence:.1%} 1-day VaR backtest, window {window}"
    console.print(_frame_table(summary.T, title))
    if csv is not None:
        forecasts.to_csv(csv)
        console.print(f"daily forecasts written to {csv}")
    if report is not None:
        from fengkong.analytics.report import backtest_figure, table_html, write_report

        sections = [("summary", table_html(summary.T))]
        for name in summary.index:
            sections.append(
                (
                    f"{name}: VaR and realized P&L",
                    backtest_figure(forecasts, name, f"{label}: {name}"),
                )
            )
        write_report(report, title, sections)
        console.print(f"report written to {report}")


@risk_app.command("stress")
def stress_command(
    portfolio: Annotated[Path, typer.Argument(help="Portfolio YAML file.")],
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="Only scenarios whose name contains this text; repeatable."),
    ] = None,
    shock: Annotated[
        list[float] | None,
        typer.Option(help="Uniform moves of every asset, e.g. -0.3; repeatable."),
    ] = None,
    vol_multiplier: Annotated[float, typer.Option(help="Volatility multiplier k.")] = 2.0,
    buffer: Annotated[
        float | None, typer.Option(help="Reverse stress: the buffer (e.g. insurance fund, USD).")
    ] = None,
    paths: Annotated[int, typer.Option(help="Monte Carlo paths of the stressed VaR.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed of the stressed VaR.")] = 1,
    data_dir: DataDir = None,
    report: ReportPath = None,
) -> None:
    """Historical crash replays, hypothetical shocks, stressed VaR and the reverse stress test."""
    import pandas as pd
    from rich.console import Console

    from fengkong.analytics.ewma import ewma_covariance
    from fengkong.analytics.history import resolve_data_dir
    from fengkong.analytics.instruments import InstrumentTable
    from fengkong.analytics.measure import load_market_history
    from fengkong.analytics.portfolio import load_portfolio
    from fengkong.analytics.stress import (
        historical_scenarios,
        hypothetical_scenarios,
        reverse_stress,
        run_scenarios,
        stressed_covariance,
        stressed_var,
    )

    console = Console()
    try:
        folder = resolve_data_dir(data_dir)
        book = load_portfolio(portfolio)
        history = load_market_history(folder, book.underlyings, book.as_of)
        assets = tuple(history.log_returns.columns)
        table = InstrumentTable.build(book.instruments(history.closes.to_dict()), assets)
        quantities = book.quantities()
        moves = tuple(shock) if shock else (-0.10, -0.20, -0.30, -0.50, 0.20, 0.50)
        scenarios = historical_scenarios(folder, assets) + hypothetical_scenarios(
            assets, moves, (vol_multiplier,)
        )
        if scenario:
            scenarios = [s for s in scenarios if any(text in s.name for text in scenario)]
            if not scenarios:
                raise ValueError(f"--scenario {scenario}: matches no scenario")
        results = run_scenarios(table, quantities, scenarios)
        covariance = ewma_covariance(history.log_returns.to_numpy())
        stressed_rows = []
        for name, cov, k in (
            ("EWMA covariance", covariance, 1.0),
            (
                f"vols x{vol_multiplier:g}",
                stressed_covariance(covariance, vol_multiplier),
                vol_multiplier,
            ),
            ("correlations = 1", stressed_covariance(covariance, 1.0, True), 1.0),
            (
                f"vols x{vol_multiplier:g}, correlations = 1",
                stressed_covariance(covariance, vol_multiplier, True),
                vol_multiplier,
            ),
        ):
            var, es = stressed_var(table, quantities, cov, 0.99, paths, seed, k)
            stressed_rows.append({"covariance": name, "var_99": var, "es_99": es})
        stressed = pd.DataFrame(stressed_rows).set_index("covariance")
        reverse = reverse_stress(table, quantities, buffer) if buffer is not None else None
    except (ValueError, FileNotFoundError) as error:
        raise _fail(console, error) from error
    shock_columns = tuple(c for c in results.columns if c.startswith("shock_"))
    console.print(
        _frame_table(results, f"{book.name}: stress P&L (USD)", money=("pnl",), pct=shock_columns)
    )
    console.print(
        _frame_table(
            stressed,
            "1-day 99% VaR / ES, normal Monte Carlo, stressed covariance",
            money=("var_99", "es_99"),
        )
    )
    if reverse is not None:
        for side, move in (("down", reverse.move_down), ("up", reverse.move_up)):
            text = f"{move:+.2%}" if move is not None else "not reached within the searched range"
            console.print(
                f"reverse stress: uniform move {side} that loses {_money(buffer)} USD: {text}"
            )
    if report is not None:
        from fengkong.analytics.report import stress_figure, table_html, write_report

        title = f"{book.name} as of {book.as_of.date()}: stress tests"
        sections = [
            ("P&L per scenario", stress_figure(results, title)),
            ("scenarios", table_html(results)),
            ("stressed VaR", table_html(stressed)),
        ]
        write_report(report, title, sections)
        console.print(f"report written to {report}")
