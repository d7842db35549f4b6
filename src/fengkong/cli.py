"""The ``fengkong`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="fengkong",
    help="fengkong (风控): real-time risk control for a cryptocurrency exchange.",
    no_args_is_help=True,
    add_completion=False,
)

# Sub-command groups are mounted below, one line each.
