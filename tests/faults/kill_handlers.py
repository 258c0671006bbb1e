"""Handlers for the worker processes the kill and restart faults run
(`leveret worker tests.faults.kill_handlers:worker`).

Every run leaves a line `job_id attempt pid` in a side record, a file opened with O_APPEND:
one small write per line, so lines from concurrent processes never interleave, and a line
survives its process being killed the instant after. The record is the handlers' own account
of what ran where, to hold against what the store says.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leveret.workers import JobContext, Worker

worker = Worker("leveret-fault-handlers")


@worker.handler("work")
async def work(ctx: JobContext, payload: dict[str, Any]) -> dict[str, int]:
    """Record this run in `payload.record`, then take `payload.seconds` (cancellably, so a
    graceful stop can hand the job back); return where and as which attempt it ran."""
    line = f"{ctx.id} {ctx.attempt} {os.getpid()}\n".encode()
    fd = os.open(payload["record"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    await asyncio.sleep(float(payload.get("seconds", 0.0)))
    return {"pid": os.getpid(), "attempt": ctx.attempt}


@dataclass(frozen=True)
class Run:
    """One line of the side record: a handler started on `job_id` as `attempt` in `pid`."""

    job_id: str
    attempt: int
    pid: int


def read_runs(record: Path) -> list[Run]:
    """Every run in the side record, in the order they started."""
    if not record.exists():
        return []
    runs = []
    for line in record.read_text().splitlines():
        job_id, attempt, pid = line.split()
        runs.append(Run(job_id, int(attempt), int(pid)))
    return runs


def runs_by_job(runs: list[Run]) -> dict[str, list[Run]]:
    """The runs of each job, in the order they started."""
    found: dict[str, list[Run]] = {}
    for run in runs:
        found.setdefault(run.job_id, []).append(run)
    return found


def pid_of(worker_id: str | None) -> int | None:
    """The process id in a worker id (`host/pid/suffix`), or None."""
    if worker_id is None:
        return None
    return int(worker_id.split("/")[-2])
