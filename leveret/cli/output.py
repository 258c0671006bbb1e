"""How the client commands answer: one JSON document or Rich tables, exit codes, errors.

Every client command (`leveret submit`, `get`, `list`, `dlq …`) prints through here, so the
shapes scripts parse and the exit codes they branch on are decided in one place. The table
of exit codes is in `leveret.cli.jobs`'s docstring.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from leveret.cli.exits import EXIT_AUTH, EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE
from leveret.cli.options import err
from leveret.client.errors import (
    AuthenticationError,
    GatewayConnectionError,
    LeveretClientError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RequestTimeoutError,
    ServerError,
    ValidationError,
)
from leveret.client.models import DlqEntry, JobInfo, QueueInfo, QueueStats

T = TypeVar("T")

# A job id: a UUID in its canonical form.
_ID_WIDTH = 36
# Wide enough for any row; a table only takes the width its cells need.
_PIPE_WIDTH = 1000
# Statuses a proxy in front of the gateway answers when the gateway itself is down.
_GATEWAY_DOWN = frozenset({502, 503, 504})


def fail(message: str, code: int) -> NoReturn:
    """Print `message` as one `error:` line on stderr and exit with `code`."""
    one_line = escape(" ".join(message.split()))
    err.print(f"[red]error:[/red] {one_line}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def exit_code(error: LeveretClientError) -> int:
    """The exit code an SDK error stands for."""
    if isinstance(error, GatewayConnectionError | RequestTimeoutError):
        return EXIT_UNAVAILABLE
    if isinstance(error, ServerError):
        return EXIT_UNAVAILABLE if error.status in _GATEWAY_DOWN else EXIT_FAILED
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return EXIT_AUTH
    if isinstance(error, ValidationError | PayloadTooLargeError):
        return EXIT_USAGE
    # 404 and 409 (JobNotFoundError, ConflictError), a 500, anything unforeseen: refused.
    return EXIT_FAILED


@contextmanager
def client_errors(url: str) -> Iterator[None]:
    """Turn an SDK error raised in the block into one line on stderr and its exit code."""
    try:
        yield
    except GatewayConnectionError:
        fail(f"cannot reach the gateway at {url} (is `leveret serve` running?)", EXIT_UNAVAILABLE)
    except LeveretClientError as exc:
        fail(str(exc), exit_code(exc))


def emit_json(document: Any) -> None:
    """Print `document` (structs, enums and datetimes included) as one line of JSON."""
    typer.echo(msgspec.json.encode(msgspec.to_builtins(document)).decode())


def emit(document: T, *, as_json: bool, human: Callable[[T], None]) -> None:
    """Print `document` as JSON, or for people through `human`."""
    if as_json:
        emit_json(document)
    else:
        human(document)


def show_value(value: Any) -> None:
    """Print a job's payload or result as indented JSON, for people and `$(…)` alike."""
    typer.echo(json.dumps(msgspec.to_builtins(value), indent=2, ensure_ascii=False))


def progress_bar(*, wanted: bool = True) -> Progress:
    """A bar on stderr that leaves no trace; off unless `wanted` and stderr is a terminal,
    so that pipes and logs get only the answer (`.disable` tells which)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not (wanted and err.is_terminal),
    )


def _when(moment: datetime | None) -> str:
    # Local time, as people read clocks; --json keeps the API's UTC.
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _json_text(value: Any) -> str:
    return json.dumps(msgspec.to_builtins(value), ensure_ascii=False)


def _table(*columns: str, free: str = "", key_width: int = 0) -> Table:
    """A borderless table keyed by its first column, at least `key_width` wide; only the
    column named `free` may wrap, the others keep to one line (a folded state is worse
    than a cut one)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    # A job id is the one thing people copy out of a table: never fold or cut it.
    table.add_column(columns[0], no_wrap=True, min_width=max(len(columns[0]), key_width))
    for column in columns[1:]:
        table.add_column(column, no_wrap=column != free, overflow="fold")
    return table


def _print(table: Table) -> None:
    console = Console()
    if not console.is_terminal:
        # Piped into grep or a file, rows must stay whole rather than fit 80 columns.
        console = Console(width=_PIPE_WIDTH)
    console.print(table)


def jobs_table(jobs: Sequence[JobInfo]) -> None:
    """Print jobs one per row (or a note on stderr that there are none)."""
    if not jobs:
        err.print("no jobs")
        return
    table = _table(
        "id",
        "type",
        "queue",
        "state",
        "attempt",
        "progress",
        "created",
        free="type",
        key_width=_ID_WIDTH,
    )
    for job in jobs:
        attempts = f"{job.attempt}/{job.max_attempts}" if job.max_attempts else str(job.attempt)
        table.add_row(
            job.id,
            job.type,
            job.queue,
            job.state.value,
            attempts,
            f"{job.progress:.0f}%",
            _when(job.created_at),
        )
    _print(table)


def job_detail(job: JobInfo) -> None:
    """Print one job as a two-column table, payload and result included."""
    table = _table("field", "value", free="value")
    rows: list[tuple[str, str]] = [
        ("id", job.id),
        ("type", job.type),
        ("queue", job.queue),
        ("state", job.state.value),
        ("priority", f"{job.priority.value} ({job.priority.name.lower()})"),
        ("attempt", f"{job.attempt} of {job.max_attempts or 'default'}"),
        ("progress", f"{job.progress:.0f}% {job.progress_message}".rstrip()),
        ("created", _when(job.created_at)),
        ("started", _when(job.started_at)),
        ("completed", _when(job.completed_at)),
        ("tags", ", ".join(f"{k}={v}" for k, v in job.tags.items())),
        ("last error", job.last_error or ""),
        ("payload", _json_text(job.payload)),
    ]
    if job.is_terminal:
        rows.append(("result", _json_text(job.result)))
    for name, value in rows:
        if value:
            table.add_row(name, value)
    _print(table)


def stats_table(stats: QueueStats) -> None:
    """Print job counts by state and the number of consumers."""
    table = _table("state", "jobs")
    counts = msgspec.structs.asdict(stats)
    for name, value in counts.items():
        if isinstance(value, int):
            table.add_row(name, str(value))
    table.add_row("consumers", str(stats.workers.consumers))
    _print(table)


def queues_table(queues: Iterable[QueueInfo]) -> None:
    """Print each queue's broker depth, consumers, DLQ depth and jobs by state."""
    table = _table("queue", "ready", "consumers", "dlq", "jobs by state", free="jobs by state")
    for queue in queues:
        counts = ", ".join(f"{state} {n}" for state, n in queue.counts.items() if n)
        table.add_row(
            queue.name,
            _number(queue.ready),
            _number(queue.consumers),
            _number(queue.dlq),
            counts,
        )
    _print(table)


def dlq_table(entries: Sequence[DlqEntry]) -> None:
    """Print DLQ entries with why each is there (or a note on stderr that it is empty)."""
    if not entries:
        err.print("the DLQ is empty")
        return
    table = _table(
        "id", "type", "queue", "state", "attempt", "reason", free="reason", key_width=_ID_WIDTH
    )
    for entry in entries:
        table.add_row(
            entry.id,
            entry.type,
            entry.queue,
            entry.state.value,
            str(entry.attempt),
            entry.reason or entry.last_error or "",
        )
    _print(table)


def _number(value: int | None) -> str:
    # None: the gateway could not ask RabbitMQ, which is not the same as zero.
    return "?" if value is None else str(value)
