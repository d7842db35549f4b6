"""``fengkong simulate``: replay a crash through the full engine and write its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["simulate"]


def simulate(
    scenario: Annotated[
        str,
        typer.Option(
            help="black-thursday, may-19, ftx, oct-10 (synthetic paths through public facts) "
            "or a Binance kline CSV (real data, e.g. ../shared/data/btcusdt-perp-1m-*.csv)."
        ),
    ] = "may-19",
    accounts: Annotated[int, typer.Option(min=1, help="Synthetic accounts.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the population and the alt betas.")] = 1,
    out: Annotated[Path, typer.Option(help="Folder for report.html and summary.json.")] = Path(
        "simulation"
    ),
    max_per_tick: Annotated[
        int, typer.Option(min=1, help="Liquidations processed per mark tick; the rest queue.")
    ] = 1_000,
    fund_share: Annotated[
        float, typer.Option(help="Opening insurance fund, as a share of the book's notional.")
    ] = 0.01,
    adl: Annotated[bool, typer.Option(help="Auto-deleverage (off: socialize losses).")] = True,
) -> None:
    """Replay a crash through the full engine (ledger, market, gate, liquidation, rules) over
    a seeded account population; print the summary and write an HTML report and JSON."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from fengkong.sim.report import write_outputs
    from fengkong.sim.run import SimParams
    from fengkong.sim.run import simulate as run_simulation
    from fengkong.sim.scenarios import load_path

    console = Console()
    try:
        path = load_path(scenario)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--scenario") from exc
    params = SimParams(
        accounts=accounts, seed=seed, max_per_tick=max_per_tick, fund_share=fund_share, adl=adl
    )
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
               "{task.total} points"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{path.name}: {accounts:,} accounts", total=len(path.prices))
        result = run_simulation(path, params, lambda done, _total: progress.update(task,
                                completed=done))  # fmt: skip
    report, summary_path = write_outputs(result, out)
    summary = result.summary
    table = Table(title=f"simulate {summary['scenario']} "
                  f"({'synthetic path' if summary['synthetic'] else 'real klines'})")  # fmt: skip
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in (
        "points", "drawdown", "accounts", "positions", "events", "accounts_liquidated",
        "partial_liquidations", "takeovers", "adl_closes", "socialized_loss", "conserved",
        "below_maintenance_not_queued", "negative_equity_groups", "seconds", "state_hash",
    ):  # fmt: skip
        value = summary[key]
        table.add_row(key, f"{value:.1%}" if key == "drawdown" else str(value))
    for asset, fund in summary["insurance_fund"].items():
        table.add_row(f"insurance fund {asset}", f"{fund['start']} → {fund['end']}")
    console.print(table)
    console.print(f"report: {report}\nsummary: {summary_path}")
    if not summary["conserved"] or summary["below_maintenance_not_queued"]:
        console.print("[red]an invariant failed: see the summary[/red]")
        raise typer.Exit(1)
