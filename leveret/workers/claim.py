"""Claiming a delivery's job: the one conditional write that makes this worker the one
running it, or the finding that there is nothing to run."""

from __future__ import annotations

from typing import Any

from leveret.jobs.backoff import DEFAULT_BACKOFF
from leveret.jobs.envelope import Envelope
from leveret.jobs.errors import DuplicateJob
from leveret.jobs.model import Job, utcnow
from leveret.jobs.rules import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY
from leveret.jobs.states import JobState
from leveret.jobs.store.protocol import JobStore
from leveret.workers.registry import Handler

# States a delivery may start a job from: the normal ways into a work queue.
_START_SOURCES = frozenset({JobState.SCHEDULED, JobState.DELAYED, JobState.RETRYING})
# States a redelivered message may take a job over from: its worker died mid-attempt (running)
# or between recording a retry and publishing it (retrying).
_TAKEOVER_SOURCES = frozenset({JobState.RUNNING, JobState.RETRYING})


class Claimer:
    """Moves a delivered job to `running` on behalf of worker `worker_id`."""

    def __init__(self, store: JobStore, worker_id: str) -> None:
        self._store = store
        self._worker_id = worker_id

    async def claim(
        self,
        queue: str,
        envelope: Envelope,
        attempt: int,
        *,
        redelivered: bool,
        handler: Handler | None,
    ) -> Job | None:
        """The job, now `running` here for attempt `attempt` (or the attempt after a lost
        one), or None when this delivery has nothing to run: a duplicate, or the job was
        cancelled or has finished. A job the store has never seen (published straight over
        AMQP) is recorded, already running."""
        assert envelope.id is not None
        changes = self._start_changes(envelope, attempt, handler)
        job = await self._store.transition(
            envelope.id,
            JobState.RUNNING,
            sources=_START_SOURCES,
            attempt=attempt - 1,
            changes=changes,
        )
        if job is not None:
            return job
        current = await self._store.get(envelope.id)
        if current is None:
            return await self._record(queue, envelope, changes)
        if redelivered and current.state in _TAKEOVER_SOURCES:
            # The broker gives a message back only when the channel that held it closed: the
            # worker running it died. The lost attempt counts, so a job that kills its worker
            # every time ends in the DLQ instead of looping. The count comes from the store,
            # not the header: a requeued message keeps the header it was first sent with.
            lost = current.attempt
            changes["attempt"] = lost + 1
            changes["last_error"] = f"worker running attempt {lost} was lost"
            return await self._store.transition(
                envelope.id,
                JobState.RUNNING,
                sources=_TAKEOVER_SOURCES,
                attempt=lost,
                changes=changes,
            )
        return None

    def _start_changes(
        self, envelope: Envelope, attempt: int, handler: Handler | None
    ) -> dict[str, Any]:
        # A job left to its handler's defaults gets them now, once and for all.
        return {
            "attempt": attempt,
            "started_at": utcnow(),
            "worker": self._worker_id,
            "max_attempts": envelope.max_attempts
            or (handler.max_attempts if handler else None)
            or DEFAULT_MAX_ATTEMPTS,
            "backoff": envelope.backoff
            or (handler.backoff if handler else None)
            or DEFAULT_BACKOFF,
        }

    async def _record(self, queue: str, envelope: Envelope, changes: dict[str, Any]) -> Job | None:
        assert envelope.id is not None
        job = Job(
            id=envelope.id,
            type=envelope.type,
            state=JobState.RUNNING,
            queue=queue,
            priority=envelope.priority if envelope.priority is not None else DEFAULT_PRIORITY,
            payload=envelope.payload,
            timeout=envelope.timeout,
            idempotency_key=envelope.idempotency_key,
            correlation_id=envelope.correlation_id,
            tags=envelope.tags,
            scheduled_at=envelope.scheduled_at,
            **changes,
        )
        try:
            return await self._store.create(job)
        except DuplicateJob:
            return None  # another delivery of it, or its idempotency key, got there first
