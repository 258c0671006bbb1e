"""The JobStore protocol every store implements, and what its methods take and return."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import msgspec

from leveret.jobs.model import JOB_FIELDS, Job, utcnow
from leveret.jobs.states import JobState, sources_of

# Fields a transition or update may change: never the identity or the creation time.
MUTABLE_FIELDS: frozenset[str] = JOB_FIELDS - {"id", "v", "created_at", "state", "updated_at"}


class JobQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters and page for listing jobs, newest first."""

    states: frozenset[JobState] | None = None
    type: str | None = None
    queue: str | None = None
    tags: Mapping[str, str] | None = None
    limit: int = 100
    cursor: str | None = None  # the last id of the previous page


class JobPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a listing; `next_cursor` is None on the last page."""

    jobs: list[Job]
    next_cursor: str | None


class JobStore(Protocol):
    """Where jobs live. Every state change is one conditional write (see `transition`)."""

    async def open(self) -> None:
        """Connect and create what the store needs (tables, indexes); idempotent."""

    async def close(self) -> None:
        """Flush pending writes and release connections."""

    async def create(self, job: Job) -> Job:
        """Store a new job; DuplicateJob if its id or idempotency key is taken."""

    async def create_many(self, jobs: Sequence[Job]) -> list[Job]:
        """Store all of `jobs` or none of them; DuplicateJob names the first clash."""

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""

    async def find_by_idempotency_key(self, key: str) -> Job | None:
        """The job created with this idempotency key, or None."""

    async def transition(
        self,
        job_id: str,
        target: JobState,
        *,
        sources: frozenset[JobState] | None = None,
        attempt: int | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> Job | None:
        """Move a job to `target` if it is in one of `sources` (default: every legal source)
        and, when given, its attempt is `attempt`; apply `changes` in the same write.
        Returns the updated job, or None when the job is missing or elsewhere (refused)."""

    async def update(
        self,
        job_id: str,
        changes: Mapping[str, Any],
        *,
        state: JobState,
        attempt: int | None = None,
    ) -> bool:
        """Apply `changes` if the job is in `state` (and attempt); whether it was."""

    async def delete(self, job_id: str) -> bool:
        """Remove a job; whether it existed."""

    async def list(self, query: JobQuery) -> JobPage:
        """Jobs matching `query`, newest first, one page."""

    async def counts(self) -> dict[str, dict[JobState, int]]:
        """How many jobs each queue has in each state (states with none left out)."""

    async def dependents(self, job_id: str) -> builtins.list[Job]:  # bare `list` is the method
        """Jobs whose depends_on names `job_id`."""

    async def storage_bytes(self) -> int:
        """How many bytes the store takes on disk (data and indexes); 0 when it cannot
        tell."""


def check_transition(
    target: JobState, sources: frozenset[JobState] | None, changes: Mapping[str, Any] | None
) -> frozenset[JobState]:
    """The source states to accept; ValueError for an illegal request (a programming error)."""
    legal = sources_of(target)
    allowed = legal if sources is None else sources
    if not allowed <= legal:
        raise ValueError(f"illegal move to {target}: from {sorted(allowed - legal)}")
    check_changes(changes or {})
    return allowed


def check_changes(changes: Mapping[str, Any]) -> None:
    """ValueError when `changes` names a field that cannot change."""
    unknown = set(changes) - MUTABLE_FIELDS
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}")


def applied(job: Job, target: JobState | None, changes: Mapping[str, Any]) -> Job:
    """`job` with `changes` (and the new state, if any) applied and updated_at now."""
    fields = dict(changes)
    if target is not None:
        fields["state"] = target
    fields["updated_at"] = utcnow()
    return msgspec.structs.replace(job, **fields)
