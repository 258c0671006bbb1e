"""What a producer asks for when it submits a job, and the job that becomes of it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec

from leveret.jobs.backoff import Backoff
from leveret.jobs.errors import InvalidJob
from leveret.jobs.model import (
    DEFAULT_QUEUE,
    Job,
    JobType,
    MaxAttempts,
    PriorityValue,
    QueueName,
    Tags,
    TimeoutSeconds,
    is_valid_queue,
    is_valid_type,
    new_job_id,
    utcnow,
)
from leveret.jobs.states import JobState

_Seconds = Annotated[float, msgspec.Meta(ge=0)]
_Deps = Annotated[list[str], msgspec.Meta(max_length=100)]


class Submission(msgspec.Struct, kw_only=True, frozen=True):
    """A job to create. Durations are seconds; `delay` and `scheduled_at` exclude each other."""

    type: JobType
    payload: Any = None
    queue: QueueName = DEFAULT_QUEUE
    priority: PriorityValue = 2
    delay: _Seconds | None = None
    scheduled_at: datetime | None = None
    max_attempts: MaxAttempts | None = None
    backoff: Backoff | None = None
    timeout: TimeoutSeconds | None = None
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    correlation_id: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    tags: Tags = msgspec.field(default_factory=dict)
    depends_on: _Deps = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        # msgspec checks the Annotated constraints when it decodes, not when a Struct is made
        # in Python: a name that reaches a queue declaration or the store is checked here.
        if not is_valid_type(self.type):
            raise InvalidJob("type", "must be 1-128 of A-Z a-z 0-9 _ . : -")
        if not is_valid_queue(self.queue):
            raise InvalidJob("queue", "must be 1-64 of a-z 0-9 _ . -")
        if self.delay is not None and self.scheduled_at is not None:
            raise InvalidJob("delay", "give either delay or scheduled_at, not both")
        if self.scheduled_at is not None and self.scheduled_at.tzinfo is None:
            raise InvalidJob("scheduled_at", "must carry a timezone")

    def to_job(self, *, trace: str | None = None) -> Job:
        """A new job for this submission: `pending` when it has dependencies, `delayed` when
        it must wait, `scheduled` otherwise."""
        now = utcnow()
        run_at = self.scheduled_at
        if self.delay:
            run_at = now + timedelta(seconds=self.delay)
        if run_at is not None and run_at <= now:
            run_at = None
        if self.depends_on:
            state = JobState.PENDING
        elif run_at is not None:
            state = JobState.DELAYED
        else:
            state = JobState.SCHEDULED
        return Job(
            id=new_job_id(),
            type=self.type,
            state=state,
            queue=self.queue,
            priority=self.priority,
            payload=self.payload,
            max_attempts=self.max_attempts,
            backoff=self.backoff,
            timeout=self.timeout,
            scheduled_at=run_at,
            depends_on=list(dict.fromkeys(self.depends_on)),
            idempotency_key=self.idempotency_key,
            correlation_id=self.correlation_id,
            tags=dict(self.tags),
            trace=trace,
            created_at=now,
            updated_at=now,
        )
