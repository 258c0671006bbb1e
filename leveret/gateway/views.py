"""What the gateway answers: GopherQueue's job JSON and Leveret's additions, as typed structs.

Timestamps are RFC 3339 UTC strings with microseconds and `Z`, always with six digits (the
GopherQueue SDKs parse them so); durations are integer nanoseconds; optional keys are
omitted when empty. The keys GopherQueue's SDKs read without a default are always there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from leveret.jobs.model import Job
from leveret.jobs.rules import DEFAULT_MAX_ATTEMPTS
from leveret.jobs.states import JobState


def timestamp(moment: datetime) -> str:
    """`moment` as `2026-11-22T10:00:00.123456Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def nanoseconds(seconds: float) -> int:
    """A duration in seconds as integer nanoseconds."""
    return round(seconds * 1_000_000_000)


class JobView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A job as the API shows it. `id`, `type`, `state`, `priority`, `attempt`,
    `max_attempts`, `progress`, `created_at` and `updated_at` are always present:
    GopherQueue's SDKs read them without a default (its Python `Job.from_dict` indexes
    them, its TypeScript `Job` type requires them)."""

    id: str
    type: str
    queue: str
    state: JobState
    priority: int
    attempt: int
    max_attempts: int
    progress: float
    progress_message: str | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    idempotency_key: str | None = None
    correlation_id: str | None = None
    depends_on: list[str] = msgspec.field(default_factory=list)
    created_at: str
    updated_at: str
    scheduled_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    last_error: str | None = None
    error_category: str | None = None
    timeout: int | None = None
    worker: str | None = None
    payload: Any | msgspec.UnsetType = msgspec.UNSET
    result: Any | msgspec.UnsetType = msgspec.UNSET


class DlqJobView(JobView, kw_only=True, omit_defaults=True):
    """A job in the dead-letter queue, with why it is there."""

    reason: str | None = None


def job_view(job: Job, *, payload: bool = False, result: bool = False) -> JobView:
    """The API's view of `job`; `payload` and `result` say whether to carry those."""
    return JobView(**_fields(job, payload=payload, result=result))


def dlq_view(job: Job, *, payload: bool = False, result: bool = False) -> DlqJobView:
    """The API's view of a job in the DLQ."""
    return DlqJobView(**_fields(job, payload=payload, result=result), reason=job.last_error)


def _fields(job: Job, *, payload: bool, result: bool) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": job.type,
        "queue": job.queue,
        "state": job.state,
        "priority": job.priority,
        "attempt": job.attempt,
        "max_attempts": max_attempts_of(job),
        "progress": job.progress or 0.0,
        "progress_message": job.progress_message,
        "tags": job.tags,
        "idempotency_key": job.idempotency_key,
        "correlation_id": job.correlation_id,
        "depends_on": job.depends_on,
        "created_at": timestamp(job.created_at),
        "updated_at": timestamp(job.updated_at),
        "scheduled_at": _maybe(job.scheduled_at),
        "started_at": _maybe(job.started_at),
        "completed_at": _maybe(job.completed_at),
        "last_error": job.last_error,
        "error_category": job.error_category,
        "timeout": None if job.timeout is None else nanoseconds(job.timeout),
        "worker": job.worker,
        "payload": job.payload if payload else msgspec.UNSET,
        "result": job.result if result and job.state is JobState.COMPLETED else msgspec.UNSET,
    }


def max_attempts_of(job: Job) -> int:
    """The attempts `job` may have: its own; else its handler's default, which the worker
    stores on the job when it first runs it; else, until then, the fleet default."""
    return DEFAULT_MAX_ATTEMPTS if job.max_attempts is None else job.max_attempts


def _maybe(moment: datetime | None) -> str | None:
    return None if moment is None else timestamp(moment)


class JobList(msgspec.Struct, kw_only=True):
    """One page of jobs, newest first."""

    jobs: list[JobView]
    count: int
    next_cursor: str | None


class DlqList(msgspec.Struct, kw_only=True):
    """One page of the dead-letter queue, newest first."""

    jobs: list[DlqJobView]
    count: int
    next_cursor: str | None


class ErrorBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What went wrong: a stable code, a message for people, and details (the field at
    fault, the batch index)."""

    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorResponse(msgspec.Struct, kw_only=True):
    """Every error the API answers."""

    error: ErrorBody


class BatchItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The fate of one job of a batch. A refused item's `error` is the message as a string
    (GopherQueue's SDKs print it; for a bad field it starts with the field's name),
    `error_code` the API error code and `error_details` the details an error body would
    carry (`field`, `limit`)."""

    index: int
    success: bool
    job: JobView | None = None
    error: str | None = None
    error_code: str | None = None
    error_details: dict[str, Any] | None = None


class BatchResponse(msgspec.Struct, kw_only=True):
    """What became of a batch."""

    total: int
    accepted: int
    rejected: int
    results: list[BatchItem]


class ResultResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A finished job's outcome: `output` is what the handler returned. `duration` (0 for a
    job that never ran) is always present: GopherQueue's TypeScript SDK requires it."""

    job_id: str
    success: bool
    output: Any = None
    error: str | None = None
    error_category: str | None = None
    duration: int
    completed_at: str | None = None


def result_view(job: Job) -> ResultResponse:
    """The outcome of `job`, which has finished."""
    success = job.state is JobState.COMPLETED
    duration = 0
    if job.started_at is not None and job.completed_at is not None:
        duration = max(0, nanoseconds((job.completed_at - job.started_at).total_seconds()))
    return ResultResponse(
        job_id=job.id,
        success=success,
        output=job.result if success else None,
        error=None if success else job.last_error,
        error_category=None if success else job.error_category,
        duration=duration,
        completed_at=_maybe(job.completed_at),
    )


class WaitResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A job's state once it finished (with its outcome as `result`, as GopherQueue sends
    it), or when the wait ran out."""

    id: str
    state: JobState
    completed: bool
    success: bool | None = None
    result: ResultResponse | None = None
    timed_out: bool | None = None


class QueueCounts(msgspec.Struct, kw_only=True):
    """How many jobs are in each state, in all queues."""

    pending: int = 0
    scheduled: int = 0
    running: int = 0
    delayed: int = 0
    retrying: int = 0
    completed: int = 0
    failed: int = 0
    dead_letter: int = 0
    cancelled: int = 0
    total_jobs: int = 0
    storage_bytes: int = 0  # the store's size on disk; 0 when it cannot tell
    timestamp: str = ""


class FleetSummary(msgspec.Struct, kw_only=True):
    """The workers, as RabbitMQ sees them: consumers on each work queue."""

    consumers: int
    queues: dict[str, int]


class StatsResponse(msgspec.Struct, kw_only=True):
    """Job counts and the fleet."""

    queue: QueueCounts
    workers: FleetSummary


class QueueInfo(msgspec.Struct, kw_only=True):
    """One queue: RabbitMQ's view (ready messages, consumers, DLQ depth) and the store's."""

    name: str
    ready: int
    consumers: int
    dlq: int
    counts: dict[str, int]


class QueueList(msgspec.Struct, kw_only=True):
    """Every queue the store or the configuration knows."""

    queues: list[QueueInfo]


class Retried(msgspec.Struct, kw_only=True):
    """How many jobs a DLQ retry sent back to their queues."""

    retried: int


class Purged(msgspec.Struct, kw_only=True):
    """How many jobs a DLQ purge removed."""

    purged: int
