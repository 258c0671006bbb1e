"""Waiting for a scenario's jobs to finish, and reading their timings back from the store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bench.processes import BenchError, Child
from leveret.jobs import TERMINAL_STATES, JobState
from leveret.jobs.store import JobQuery, JobStore

POLL_INTERVAL = 0.5  # only how soon the wait ends: the figures come from the store


async def until_finished(
    store: JobStore, total: int, *, limit: float, watch: list[Child] | None = None
) -> None:
    """Return once `total` jobs are in a terminal state, by polling `store.counts()`;
    BenchError when a watched process dies or `limit` seconds pass first."""
    counts: dict[str, dict[JobState, int]] = {}
    try:
        async with asyncio.timeout(limit):
            while _finished(counts) < total:
                for child in watch or []:
                    child.check()
                await asyncio.sleep(POLL_INTERVAL)
                counts = await store.counts()
    except TimeoutError:
        raise BenchError(f"{_finished(counts)} of {total} jobs finished in {limit:g}s") from None


def _finished(counts: dict[str, dict[JobState, int]]) -> int:
    return sum(n for states in counts.values() for s, n in states.items() if s in TERMINAL_STATES)


@dataclass(frozen=True)
class Timings:
    """What the store says about a scenario's finished jobs."""

    completed: int
    """Jobs that completed."""
    other: int
    """Jobs that ended otherwise (failed, dead-lettered, cancelled)."""
    last_completion: float
    """Epoch seconds of the last `completed_at`."""
    latencies_ms: list[float]
    """`created_at` → `completed_at` of each completed job, in milliseconds."""


async def timings(store: JobStore) -> Timings:
    """Read every finished job back, a page at a time."""
    completed = other = 0
    last = 0.0
    latencies: list[float] = []
    cursor: str | None = None
    while True:
        page = await store.list(JobQuery(states=TERMINAL_STATES, limit=1000, cursor=cursor))
        for job in page.jobs:
            if job.state is not JobState.COMPLETED or job.completed_at is None:
                other += 1
                continue
            completed += 1
            done = job.completed_at.timestamp()
            last = max(last, done)
            latencies.append((done - job.created_at.timestamp()) * 1000)
        cursor = page.next_cursor
        if cursor is None:
            return Timings(completed, other, last, latencies)
