"""The `leveret` Typer application and its command groups (commands live beside it)."""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Leveret: background jobs on RabbitMQ."
)
topology_app = typer.Typer(no_args_is_help=True, help="Inspect and declare RabbitMQ topology.")
app.add_typer(topology_app, name="topology")
