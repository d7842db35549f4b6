"""The ``fengkong`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="fengkong",
    help="fengkong (风控): real-time risk control for a cryptocurrency exchange.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def replay(
    events: Annotated[Path, typer.Argument(help="Event log, one JSON event per line.")],
    journal: Annotated[
        Path | None,
        typer.Option(help="Also journal every event (and snapshots) into this folder."),
    ] = None,
    durability: Annotated[
        str, typer.Option(help="Journal fsync policy: always, group or os.")
    ] = "group",
    snapshot_every: Annotated[
        int, typer.Option(help="With --journal: write a snapshot every N events (0: never).")
    ] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Write every output event, then the final state hash, as JSON lines."),
    ] = None,
) -> None:
    """Run an event log through a fresh engine; print a summary and the final state hash.

    The same log always gives the same outputs and the same state hash.
    """
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from fengkong.engine.core import SequenceError
    from fengkong.journal.log import Durability
    from fengkong.replay import LogLineError, read_events
    from fengkong.replay import replay as run_replay

    console = Console()
    if durability not in {d.value for d in Durability}:
        raise typer.BadParameter(f"durability={durability!r}: use always, group or os")
    sink = open(out, "wb") if out is not None else None  # noqa: SIM115 - closed below
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("replaying", total=None)
            summary = run_replay(
                read_events(events),
                journal=journal,
                durability=Durability(durability),
                snapshot_every=snapshot_every,
                out=sink,
                progress=lambda n: progress.advance(task, n),
            )
    except (SequenceError, LogLineError) as exc:
        console.print(f"[red]replay stopped:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        if sink is not None:
            sink.close()
    table = Table(title=f"replay of {events}")
    table.add_column("event type")
    table.add_column("count", justify="right")
    for name, count in summary.by_type.items():
        table.add_row(name, str(count))
    table.add_section()
    table.add_row("applied", str(summary.applied))
    table.add_row("rejected", str(summary.rejected))
    for reason, count in summary.rejections.items():
        table.add_row(f"  {reason}", str(count))
    table.add_row("duplicates", str(summary.duplicates))
    table.add_row("outputs", str(summary.outputs))
    console.print(table)
    console.print(f"last seq {summary.last_seq}")
    console.print(f"state hash {summary.state_hash}")


@app.command()
def state(
    journal: Annotated[Path, typer.Option(help="Journal folder written by replay --journal.")],
) -> None:
    """Recover an engine from a journal folder and print its balances and positions."""
    from rich.console import Console
    from rich.table import Table

    from fengkong.journal.durable import recover
    from fengkong.model.fixed import format_units

    console = Console()
    engine, report = recover(journal)
    ledger = engine.component("ledger")
    console.print(
        f"recovered from snapshot seq {report.snapshot_seq} + {report.replayed} journal "
        f"records: last seq {report.last_seq}"
    )
    if report.torn is not None:
        console.print(
            f"[yellow]torn tail at offset {report.torn.offset}: {report.torn.reason}, "
            f"{report.torn.dropped_bytes} bytes set aside in {report.torn.quarantine}[/yellow]"
        )
    for skipped in report.skipped_snapshots:
        console.print(f"[yellow]snapshot skipped (does not verify): {skipped}[/yellow]")
    balances = Table(title="balances")
    for column in ("account", "asset", "free", "locked", "total"):
        balances.add_column(
            column, justify="right" if column in {"free", "locked", "total"} else "left"
        )
    positions = Table(title="positions")
    for column in (
        "account",
        "symbol",
        "side",
        "mode",
        "qty",
        "entry value",
        "realized",
        "isolated",
    ):
        positions.add_column(column)
    for account_id in sorted(ledger.accounts):
        account = ledger.accounts[account_id]
        for asset in sorted(account.balances):
            scale = ledger.assets[asset].scale
            balance = account.balances[asset]
            balances.add_row(
                account_id,
                asset,
                format_units(balance.free, scale),
                format_units(balance.locked, scale),
                format_units(balance.total, scale),
            )
        for key in sorted(account.positions):
            position = account.positions[key]
            instrument = ledger.instruments[position.symbol]
            math = ledger.contract_math(position.symbol)
            settle_scale = ledger.assets[instrument.settle].scale
            positions.add_row(
                account_id,
                position.symbol,
                position.side.value,
                position.margin_mode.value,
                format_units(position.qty, instrument.qty_scale),
                format_units(position.entry_value, math.value_scale),
                format_units(position.realized_pnl, settle_scale),
                format_units(position.isolated_margin, settle_scale),
            )
    console.print(balances)
    console.print(positions)
    console.print(f"state hash {engine.state_hash()}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of every input event and output event."""
    import msgspec

    from fengkong.engine.core import default_components
    from fengkong.model.events import event_types, output_types

    default_components()  # importing the components registers their event kinds
    inputs = tuple(event_types())
    outputs = tuple(output_types())
    _schemas, components = msgspec.json.schema_components(inputs + outputs)
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "fengkong events",
        "inputs": [t.__name__ for t in inputs],
        "outputs": [t.__name__ for t in outputs],
        "$defs": components,
    }
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(document), indent=2).decode())
    sys.stdout.write("\n")


# Sub-command groups are mounted below, one line each.
from fengkong.rules.cli import rules_app  # noqa: E402

app.add_typer(rules_app, name="rules")
from fengkong.analytics.cli import risk_app  # noqa: E402

app.add_typer(risk_app, name="risk")
from fengkong.sim.cli import simulate  # noqa: E402

app.command()(simulate)
