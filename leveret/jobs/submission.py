"""What a producer asks for when it submits a job, and the job that becomes of it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec

from leveret.jobs.backoff import Backoff
from leveret.jobs.errors import InvalidJob
from leveret.jobs.model import Job, new_job_id, utcnow
from leveret.jobs.rules import (
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    QUEUE_RULE,
    TYPE_RULE,
    DelaySeconds,
    Dependencies,
    JobType,
    MaxAttempts,
    PriorityValue,
    QueueName,
    Tags,
    TimeoutSeconds,
    check_max_attempts,
    check_timeout,
    check_timing,
    is_valid_queue,
    is_valid_type,
)
from leveret.jobs.states import JobState


class Submission(msgspec.Struct, kw_only=True, frozen=True):
    """A job to create. Durations are seconds; `delay` and `scheduled_at` exclude each other."""

    type: JobType
    payload: Any = None
    queue: QueueName = DEFAULT_QUEUE
    priority: PriorityValue = DEFAULT_PRIORITY
    delay: DelaySeconds | None = None
    scheduled_at: datetime | None = None
    max_attempts: MaxAttempts | None = None
    backoff: Backoff | None = None
    timeout: TimeoutSeconds | None = None
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    correlation_id: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    tags: Tags = msgspec.field(default_factory=dict)
    depends_on: Dependencies = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        # msgspec checks the Annotated constraints when it decodes, not when a Struct is made
        # in Python: a name that reaches a queue declaration or the store is checked here.
        if not is_valid_type(self.type):
            raise InvalidJob("type", TYPE_RULE)
        if not is_valid_queue(self.queue):
            raise InvalidJob("queue", QUEUE_RULE)
        check_timing(self.delay, self.scheduled_at)
        check_timeout(self.timeout)
        check_max_attempts(self.max_attempts)

    def to_job(self) -> Job:
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
            created_at=now,
            updated_at=now,
        )
