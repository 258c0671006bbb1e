"""`leveret dlq list|retry|purge`: the dead-letter queue, through the gateway.

The DLQ holds the jobs that ended `failed` (rejected, or a non-retryable error) or
`dead_letter` (attempts exhausted). Options and exit codes are those of `leveret.cli.jobs`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from leveret.cli.app import app
from leveret.cli.exits import EXIT_FAILED, EXIT_USAGE
from leveret.cli.jobs import ApiKey, AsJson, Url, collect, gateway
from leveret.cli.options import err
from leveret.cli.output import dlq_table, emit, emit_json, fail
from leveret.client.models import DlqPage

dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter queue: jobs that ended badly.")
app.add_typer(dlq_app, name="dlq")

Queue = Annotated[str | None, typer.Option(help="Only this queue.")]
JobType = Annotated[str | None, typer.Option("--type", help="Only this job type.")]


@dlq_app.command("list")
def list_dlq(
    queue: Queue = None,
    job_type: JobType = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many jobs.")] = 100,
    all_jobs: Annotated[bool, typer.Option("--all", help="Every job in the DLQ.")] = False,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """List the DLQ, newest first, with why each job is there."""
    with gateway(url, api_key) as client:

        def fetch(size: int, cursor: str | None) -> DlqPage:
            return client.dlq(queue=queue, type=job_type, limit=size, cursor=cursor)

        page = collect(fetch, None if all_jobs else limit)
    emit(page, as_json=as_json, human=lambda found: dlq_table(found.jobs))


@dlq_app.command("retry")
def retry_dlq(
    queue: Queue = None,
    job_type: JobType = None,
    ids: Annotated[
        list[str] | None, typer.Option("--id", help="Only this job; repeatable.")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Send DLQ jobs back to work: those given by --id, else all of --queue and --type."""
    with gateway(url, api_key) as client:
        retried = client.dlq_retry(queue=queue, type=job_type, ids=ids or None)
    if as_json:
        emit_json({"retried": retried})
    else:
        typer.echo(f"retried {retried} job(s)")


@dlq_app.command("purge")
def purge_dlq(
    queue: Queue = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Delete the DLQ's jobs (of --queue, or all) for good; asks first unless --yes."""
    if not yes:
        confirm(f"Delete every job in the DLQ{f' of queue {queue}' if queue else ''}?")
    with gateway(url, api_key) as client:
        purged = client.dlq_purge(queue)
    if as_json:
        emit_json({"purged": purged})
    else:
        typer.echo(f"purged {purged} job(s)")


def confirm(question: str) -> None:
    """Ask `question` on the terminal; exit 1 unless the answer is yes."""
    # With nobody at the keyboard (a script, a pipe), a prompt would read stdin's data or
    # hang; the script must say --yes.
    if not sys.stdin.isatty():
        fail("purging needs --yes when stdin is not a terminal", EXIT_USAGE)
    # The question goes to stderr so that stdout stays one answer (a JSON document).
    if not typer.confirm(question, err=True):
        err.print("nothing purged")
        raise typer.Exit(EXIT_FAILED)
