"""Handlers for the soak test's worker processes
(`leveret worker tests.faults.soak_handlers:worker`).

Each job's payload says how long to work and how to end; each execution appends two JSON
lines to the file named by LEVERET_SOAK_LOG: `start` when the handler begins and `end` with
its outcome. The file is opened with O_APPEND and every line is one write(2), so the lines of
several processes never interleave; a SIGKILLed execution leaves its `start` line only.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leveret.workers import JobContext, Reject, Worker

LOG_ENV = "LEVERET_SOAK_LOG"

# Outcomes an `end` line records.
OK = "ok"
ERROR = "error"  # raised an ordinary exception: retried until attempts run out
REJECT = "reject"  # raised Reject: failed for good
INTERRUPTED = "interrupted"  # stopped by the worker: cancelled, or handed back at shutdown

worker = Worker("leveret-soak")
_log_fd: int | None = None


def _append(record: dict[str, Any]) -> None:
    global _log_fd
    if _log_fd is None:
        _log_fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_log_fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())


class _Execution:
    """One handler call's log lines: `start` now, `end` with the outcome."""

    def __init__(self, ctx: JobContext) -> None:
        started_at = ctx.job.started_at
        self.base = {
            "job": ctx.id,
            "attempt": ctx.attempt,
            "pid": os.getpid(),
            # When the engine moved the job to running (its clock, before the store write).
            "engine_start": started_at.timestamp() if started_at is not None else None,
            "start": time.time(),
        }
        _append({"event": "start", **self.base})

    def end(self, outcome: str) -> None:
        _append({"event": "end", **self.base, "end": time.time(), "outcome": outcome})


def _decide(ctx: JobContext, payload: dict[str, Any]) -> str:
    """What this execution is planned to do, once it has worked for its time."""
    fail = payload["fail"]
    if fail == "always" or (fail == "first" and ctx.attempt == 1):
        return ERROR
    if fail == "reject":
        return REJECT
    return OK


def _finish(run: _Execution, outcome: str) -> dict[str, Any]:
    run.end(outcome)
    if outcome == ERROR:
        raise RuntimeError("planned failure")
    if outcome == REJECT:
        raise Reject("planned rejection")
    return {"ok": True}


@worker.handler("soak.work")
async def work(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Sleep `payload["ms"]`, then succeed or fail as `payload["fail"]` says (none, first,
    always, reject)."""
    run = _Execution(ctx)
    try:
        await asyncio.sleep(payload["ms"] / 1000)
    except asyncio.CancelledError:
        run.end(INTERRUPTED)
        raise
    return _finish(run, _decide(ctx, payload))


@worker.handler("soak.report")
async def report(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Like soak.work, reporting progress and a checkpoint on the way (store writes while
    running, which must not outlive the attempt)."""
    run = _Execution(ctx)
    try:
        ctx.progress(10)
        await asyncio.sleep(payload["ms"] / 2000)
        ctx.save_checkpoint({"half": True})
        ctx.progress(50)
        await asyncio.sleep(payload["ms"] / 2000)
    except asyncio.CancelledError:
        run.end(INTERRUPTED)
        raise
    return _finish(run, _decide(ctx, payload))


@worker.handler("soak.blocking")
def blocking(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A plain function (run in the worker's thread pool) that blocks for `payload["ms"]`;
    it cannot be interrupted, so it always logs the outcome it was planned to have."""
    run = _Execution(ctx)
    time.sleep(payload["ms"] / 1000)
    return _finish(run, _decide(ctx, payload))


@dataclass(frozen=True)
class Execution:
    """One handler call as the log tells it; `outcome` and `end` are None for a call whose
    process was killed before it ended."""

    job: str
    attempt: int
    pid: int
    engine_start: float | None
    start: float
    end: float | None
    outcome: str | None


def read_executions(path: Path) -> list[Execution]:
    """Every execution the log records, in the order they started."""
    if not path.exists():
        return []
    ended: dict[tuple[str, int, int, float], dict[str, Any]] = {}
    started: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "start":
            started.append(record)
        else:
            ended[_key(record)] = record
    runs = []
    for record in started:
        end = ended.pop(_key(record), None)
        runs.append(
            Execution(
                job=record["job"],
                attempt=record["attempt"],
                pid=record["pid"],
                engine_start=record["engine_start"],
                start=record["start"],
                end=None if end is None else end["end"],
                outcome=None if end is None else end["outcome"],
            )
        )
    assert not ended, f"`end` lines without a `start`: {list(ended.values())[:5]}"
    return sorted(runs, key=lambda run: run.start)


def _key(record: dict[str, Any]) -> tuple[str, int, int, float]:
    return record["job"], record["attempt"], record["pid"], record["start"]
