"""Jobs for the store tests: made with millisecond times, created in id order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from leveret.jobs.model import Job, new_job_id
from leveret.jobs.states import JobState
from leveret.jobs.store import JobStore

S = JobState
SCHEDULED = frozenset({S.SCHEDULED})

# Millisecond times: MongoDB keeps no finer, and the round trip must compare equal.
T0 = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)


def make_job(**fields: Any) -> Job:
    """A scheduled job with millisecond times, `fields` overriding."""
    values: dict[str, Any] = {
        "id": new_job_id(),
        "type": "email.send",
        "state": S.SCHEDULED,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    return Job(**values)


async def create_all(store: JobStore, count: int, **fields: Any) -> list[Job]:
    """`count` jobs created one after another (so in id order, oldest first)."""
    return [await store.create(make_job(**fields)) for _ in range(count)]


def ids(jobs: list[Job]) -> list[str]:
    """The ids of `jobs`, in order."""
    return [job.id for job in jobs]
