"""`leveret keys add|list|revoke`: the gateway's API keys, stored hashed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from leveret.cli.app import app
from leveret.cli.exits import EXIT_FAILED, EXIT_USAGE
from leveret.cli.options import err
from leveret.gateway.keys import KeyFile, Role
from leveret.jobs.errors import ConfigurationError
from leveret.jobs.settings import Settings

keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys.")
app.add_typer(keys_app, name="keys")


KeysFile = Annotated[
    str | None, typer.Option("--file", help="API keys file [LEVERET_API_KEYS_FILE].")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a ConfigurationError into one line on stderr and exit code 2."""
    try:
        yield
    except ConfigurationError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None


def key_file(path: str | None) -> KeyFile:
    """The keys file named by `--file`, else by LEVERET_API_KEYS_FILE."""
    configured = Settings.from_env(api_keys_file=path).api_keys_file
    if configured is None:
        raise ConfigurationError("no API keys file: pass --file or set LEVERET_API_KEYS_FILE")
    return KeyFile(configured)


@keys_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Who holds the key (A-Z a-z 0-9 _ . -).")],
    role: Annotated[Role, typer.Option("--role", help="What the key may do.")],
    file: KeysFile = None,
    as_json: AsJson = False,
) -> None:
    """Make a new key; it is printed once and only its hash is stored."""
    with one_line_errors():
        keys = key_file(file)
        key = keys.add(name, role)
    if as_json:
        typer.echo(json.dumps({"name": name, "role": role.value, "key": key}))
        return
    # The notice goes to stderr so that `KEY=$(leveret keys add …)` captures the key alone.
    err.print(
        f"Added {role.value} key [bold]{name}[/bold] to {keys.path}. "
        "It is shown [bold]once[/bold], now; store it somewhere safe:",
        highlight=False,
        soft_wrap=True,
    )
    typer.echo(key)


@keys_app.command("list")
def list_keys(file: KeysFile = None, as_json: AsJson = False) -> None:
    """Show each key's id, name and role (never the key)."""
    with one_line_errors():
        entries = key_file(file).load()
    if as_json:
        rows = [{"id": k.id, "name": k.name, "role": k.role.value} for k in entries]
        typer.echo(json.dumps(rows))
        return
    if not entries:
        err.print("no API keys yet: add one with `leveret keys add NAME --role ROLE`")
        return
    table = Table("id", "name", "role")
    for entry in entries:
        table.add_row(entry.id, entry.name, entry.role.value)
    Console().print(table)


@keys_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The name of the key to revoke.")],
    file: KeysFile = None,
) -> None:
    """Remove a key; a running gateway stops accepting it within a second or so."""
    with one_line_errors():
        keys = key_file(file)
        removed = keys.revoke(name)
    if not removed:
        err.print(
            f"[red]error:[/red] no key named {name!r} in {keys.path}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_FAILED)
    typer.echo(f"revoked the key {name!r}")
