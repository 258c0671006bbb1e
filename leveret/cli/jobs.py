"""`leveret submit|get|wait|cancel|retry|delete|list|stats|queues`: jobs through the gateway.

These commands are clients of a running gateway (`leveret serve` or `leveret dev`), reached
with `--url` (default `$LEVERET_URL`, else `http://` + `$LEVERET_HTTP`) and `--api-key`
(`$LEVERET_API_KEY`). People get quiet text and tables; `--json` prints exactly one JSON
document on stdout instead. Every error is one `error:` line on stderr.

Exit codes, for scripts:

| code | meaning |
| ---- | ------- |
| 0 | success (`wait`, `submit --wait`: the job completed) |
| 1 | the job ended badly (failed, dead_letter, cancelled); the gateway refused the operation
|   | (404 no such job, 409 wrong state) or failed at it (500) |
| 2 | usage or validation error: bad arguments, JSON or durations; 400, 413, 422 answers |
| 3 | the gateway or its services are unavailable: refused, timed out, 502, 503, 504 |
| 4 | authentication or permission: 401, 403 |
| 5 | `wait` (or `submit --wait --wait-timeout`) gave up with the job still unfinished |
| 130 | interrupted while waiting (the job goes on) |
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import msgspec
import typer

from leveret.cli.app import app
from leveret.cli.bulk import submit_file
from leveret.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TIMED_OUT, EXIT_USAGE
from leveret.cli.output import (
    client_errors,
    emit,
    emit_json,
    fail,
    job_detail,
    jobs_table,
    progress_bar,
    queues_table,
    show_value,
    stats_table,
)
from leveret.client import SyncClient
from leveret.client.models import DlqPage, JobInfo, JobPage
from leveret.jobs.durations import parse_duration
from leveret.jobs.errors import LeveretError
from leveret.jobs.priority import Priority
from leveret.jobs.settings import Settings
from leveret.jobs.states import JobState

Url = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="LEVERET_URL", help="The gateway; default http:// + $LEVERET_HTTP."
    ),
]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", envvar="LEVERET_API_KEY", help="An API key.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]
JobId = Annotated[str, typer.Argument(metavar="ID", help="The job's id.")]

# How often a progress bar is refreshed: the gateway's wait returns the moment the job
# ends, so this bounds only how stale the bar's percentage may be, never the exit.
PROGRESS_EVERY = 0.5
# The gateway caps one wait at 5 minutes; longer waits are several.
LONGEST_WAIT = 300.0
# The gateway's largest page, and its largest batch.
MAX_PAGE = 1000

P = TypeVar("P", JobPage, DlqPage)


def gateway_url(url: str | None) -> str:
    """`url`, else where the settings say the gateway listens."""
    if url:
        return url.rstrip("/")
    try:
        listen = Settings.from_env().http
    except LeveretError as exc:
        fail(str(exc), EXIT_USAGE)
    host, _, port = listen.rpartition(":")
    # A gateway listening on every interface is reached on this host's loopback.
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


@contextmanager
def gateway(url: str | None, api_key: str | None) -> Iterator[SyncClient]:
    """A client of the gateway; SDK errors in the block become one line and an exit code."""
    base = gateway_url(url)
    with client_errors(base), SyncClient(base, api_key=api_key) as client:
        yield client


def seconds(option: str, text: str) -> float:
    """A duration option in seconds; a typo is a usage error, not a silent default."""
    try:
        return parse_duration(text)
    except LeveretError:
        fail(f"{option} {text!r} is not a duration (try 30s, 5m, 1h30m)", EXIT_USAGE)


def tags_from(values: Sequence[str] | None) -> dict[str, str]:
    """`--tag key:value` options as a mapping. The form is the API's list filter
    (`?tag=key:value`), in `submit` as in `list`; a value may hold further colons, a key
    may not (tag keys never contain one)."""
    tags: dict[str, str] = {}
    for value in values or ():
        key, found, tag_value = value.partition(":")
        if not found or not key:
            fail(f"--tag {value!r}: write it as key:value (tenant:a)", EXIT_USAGE)
        tags[key] = tag_value
    return tags


def priority_from(text: str | None) -> int | None:
    """A priority given as 0-4 or by name (critical, high, normal, low, bulk)."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)  # the gateway says when it is out of range
    try:
        return int(Priority[text.upper()])
    except KeyError:
        names = ", ".join(p.name.lower() for p in Priority)
        fail(f"--priority {text!r}: use 0-4 or one of {names}", EXIT_USAGE)


def payload_from(text: str | None) -> Any:
    """The payload argument as JSON; `-` reads it from stdin."""
    if text is None:
        return None
    if text == "-":
        text = sys.stdin.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"PAYLOAD_JSON is not valid JSON: {exc}", EXIT_USAGE)


def follow(client: SyncClient, job_id: str, timeout: float | None, *, show: bool) -> JobInfo:
    """The job once it has ended, or as it is when `timeout` seconds have passed; with
    `show`, a progress bar on stderr follows the job's progress meanwhile."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with progress_bar(wanted=show) as bar:
            # Unseen, the bar needs no refreshing: one wait per gateway cap is enough.
            step = LONGEST_WAIT if bar.disable else PROGRESS_EVERY
            task = bar.add_task(job_id, total=100)
            while True:
                left = LONGEST_WAIT if deadline is None else deadline - time.monotonic()
                if left > 0:
                    client.wait(job_id, timeout=min(step, left))
                job = client.get(job_id)
                label = f"{job.type} {job.state.value} {job.progress_message}".rstrip()
                bar.update(task, completed=job.progress, description=label)
                if job.is_terminal or (deadline is not None and time.monotonic() >= deadline):
                    return job
    except KeyboardInterrupt:
        fail(f"stopped waiting; job {job_id} goes on (`leveret wait {job_id}`)", EXIT_INTERRUPTED)


def print_state(job: JobInfo) -> None:
    """Print `<id> <state>`: what a person needs after cancel or retry."""
    typer.echo(f"{job.id} {job.state.value}")


def report_end(job: JobInfo, waited: str, *, as_json: bool) -> None:
    """Print how a waited-for job ended; exit non-zero unless it completed."""
    if as_json:
        emit_json(job)
    if job.state is JobState.COMPLETED:
        if not as_json:
            show_value(job.result)
        return
    if not job.is_terminal:
        fail(f"job {job.id} is still {job.state.value} after {waited}", EXIT_TIMED_OUT)
    why = f": {job.last_error}" if job.last_error else ""
    fail(f"job {job.id} ended {job.state.value}{why}", EXIT_FAILED)


def collect(fetch: Callable[[int, str | None], P], limit: int | None) -> P:
    """Pages from `fetch(page_size, cursor)` joined until `limit` jobs (None: all of them)."""

    def size(have: int) -> int:
        return MAX_PAGE if limit is None else max(1, min(MAX_PAGE, limit - have))

    page = fetch(size(0), None)
    jobs = list(page.jobs)
    while page.next_cursor is not None and (limit is None or len(jobs) < limit):
        page = fetch(size(len(jobs)), page.next_cursor)
        jobs.extend(page.jobs)
    return msgspec.structs.replace(page, jobs=jobs, count=len(jobs))


@app.command()
def submit(
    job_type: Annotated[str | None, typer.Argument(metavar="TYPE", help="The job type.")] = None,
    payload: Annotated[
        str | None, typer.Argument(metavar="PAYLOAD_JSON", help="JSON; - reads stdin.")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Work queue.")] = None,
    priority: Annotated[str | None, typer.Option(help="0-4 or critical..bulk.")] = None,
    delay: Annotated[str | None, typer.Option(help="Run after this long (30s, 5m).")] = None,
    timeout: Annotated[str | None, typer.Option(help="The handler's time limit.")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Attempts before the DLQ.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Submit at most once.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key:value; repeatable.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait; print the result.")] = False,
    wait_timeout: Annotated[
        str | None, typer.Option(help="With --wait: give up after this long.")
    ] = None,
    file: Annotated[
        str | None, typer.Option(help="JSON lines, one submit object each; - is stdin.")
    ] = None,
    atomic: Annotated[
        bool, typer.Option("--atomic", help="With --file: each batch all or none.")
    ] = False,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Submit a job and print its id (with --wait, its result); with --file, many."""
    options: dict[str, Any] = {
        "queue": queue,
        "priority": priority_from(priority),
        "delay": delay,
        "timeout": timeout,
        "max_attempts": max_attempts,
        "tags": tags_from(tag) or None,
    }
    if file is not None:
        if payload is not None or wait or idempotency_key is not None:
            fail("--file takes no PAYLOAD_JSON, --wait or --idempotency-key", EXIT_USAGE)
        with gateway(url, api_key) as client:
            submit_file(client, file, {"type": job_type, **options}, atomic, as_json=as_json)
        return
    if job_type is None:
        fail("give a job TYPE (or --file)", EXIT_USAGE)
    body = payload_from(payload)
    limit = None if wait_timeout is None else seconds("--wait-timeout", wait_timeout)
    with gateway(url, api_key) as client:
        job = client.submit(job_type, body, idempotency_key=idempotency_key, **options)
        if wait:
            job = follow(client, job.id, limit, show=not as_json)
    if wait:
        report_end(job, wait_timeout or "waiting", as_json=as_json)
    elif as_json:
        emit_json(job)
    else:
        typer.echo(job.id)


@app.command()
def get(job_id: JobId, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """Show a job, with its payload and result."""
    with gateway(url, api_key) as client:
        job = client.get(job_id)
    emit(job, as_json=as_json, human=job_detail)


@app.command("wait")
def wait_for(
    job_id: JobId,
    timeout: Annotated[str, typer.Option(help="Give up after this long (exit 5).")] = "30s",
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Wait for a job to end, showing its progress; print its result."""
    limit = seconds("--timeout", timeout)
    with gateway(url, api_key) as client:
        job = follow(client, job_id, limit, show=not as_json)
    report_end(job, timeout, as_json=as_json)


@app.command()
def cancel(
    job_id: JobId,
    reason: Annotated[str, typer.Option(help="Why; kept with the job.")] = "",
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Cancel a job; a running one is stopped at once (its handler's task is cancelled on
    its worker). A finished job cannot be (exit 1)."""
    with gateway(url, api_key) as client:
        job = client.cancel(job_id, reason)
    emit(job, as_json=as_json, human=print_state)


@app.command()
def retry(
    job_id: JobId,
    reset_attempts: Annotated[bool, typer.Option(help="Start counting attempts anew.")] = False,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Run a failed, dead-lettered or cancelled job again."""
    with gateway(url, api_key) as client:
        job = client.retry(job_id, reset_attempts)
    emit(job, as_json=as_json, human=print_state)


@app.command()
def delete(job_id: JobId, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """Delete a job (a running one is cancelled first)."""
    with gateway(url, api_key) as client:
        client.delete(job_id)
    if as_json:
        emit_json({"id": job_id, "deleted": True})
    else:
        typer.echo(f"{job_id} deleted")


@app.command("list")
def list_jobs(
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    job_type: Annotated[str | None, typer.Option("--type", help="Only this job type.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="Only jobs tagged key:value; repeatable.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many jobs.")] = 100,
    all_jobs: Annotated[bool, typer.Option("--all", help="Every matching job.")] = False,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first."""
    tags = tags_from(tag)
    with gateway(url, api_key) as client:

        def fetch(size: int, cursor: str | None) -> JobPage:
            wanted = state.value if state else None
            return client.list(
                state=wanted, type=job_type, queue=queue, tags=tags, limit=size, cursor=cursor
            )

        page = collect(fetch, None if all_jobs else limit)
    emit(page, as_json=as_json, human=lambda found: jobs_table(found.jobs))


@app.command()
def stats(url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """Jobs by state, and the number of consumers."""
    with gateway(url, api_key) as client:
        found = client.stats()
    emit(found, as_json=as_json, human=stats_table)


@app.command()
def queues(url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """Each work queue: ready messages, consumers, DLQ depth, jobs by state."""
    with gateway(url, api_key) as client:
        found = client.queues()
    if as_json:
        emit_json({"queues": found})
    else:
        queues_table(found)
