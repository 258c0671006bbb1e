"""What the SDK hands back: the gateway's answers as typed structs (shapes: docs/api.md).

Every struct ignores keys it does not know, so a newer gateway can add fields without
breaking older clients. Names follow GopherQueue's SDK (`JobResult`, `WaitResult`,
`BatchResult`, `QueueStats`, `SSEEvent`) so that its users switch by changing an import,
except its `Job`, which is `JobInfo` here: `leveret.Job` is the engine's job, a different
class. Durations in answers are integer nanoseconds, GopherQueue's convention; each has a
`..._seconds` property.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from leveret.jobs.priority import Priority
from leveret.jobs.rules import DEFAULT_MAX_ATTEMPTS
from leveret.jobs.states import TERMINAL_STATES, JobState

__all__ = [
    "BatchItem",
    "BatchResult",
    "DlqEntry",
    "DlqPage",
    "Event",
    "JobInfo",
    "JobPage",
    "JobResult",
    "JobState",
    "Priority",
    "QueueInfo",
    "QueueStats",
    "SSEEvent",
    "WaitResult",
    "WorkerStats",
]

_NS_PER_SECOND = 1_000_000_000

J = TypeVar("J", bound="JobInfo")


class JobInfo(msgspec.Struct, kw_only=True):
    """A job as the API shows it (GopherQueue's SDK calls it `Job`). `payload` and
    `result` come only from `get` (and from `list` with `include=`); optional keys the
    gateway omitted take their empty value."""

    id: str
    type: str
    state: JobState
    queue: str = "default"
    priority: Priority = Priority.NORMAL
    attempt: int = 0
    # The job's own, else its handler's default once a worker ran it, else the fleet's.
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    progress: float = 0.0
    progress_message: str = ""
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    idempotency_key: str | None = None
    correlation_id: str | None = None
    depends_on: list[str] = msgspec.field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    last_error: str | None = None
    error_category: str | None = None  # error, timeout, rejected, no_handler, lost, …
    timeout: int | None = None  # nanoseconds
    trace_id: str | None = None
    worker: str | None = None  # the worker that ran (or runs) its latest attempt
    payload: Any = None
    result: Any = None

    @property
    def timeout_seconds(self) -> float | None:
        """The handler's time limit in seconds, when the job has its own."""
        return None if self.timeout is None else self.timeout / _NS_PER_SECOND

    @property
    def is_terminal(self) -> bool:
        """Whether the job has finished for good (completed, failed, dead-lettered or
        cancelled)."""
        return self.state in TERMINAL_STATES


class _Page(msgspec.Struct, Generic[J], kw_only=True):
    """One page of jobs. It iterates, indexes and measures like the list of jobs
    GopherQueue's `list` returns, so code written for that keeps working."""

    jobs: list[J] = msgspec.field(default_factory=list)
    count: int = 0
    next_cursor: str | None = None  # pass back as `cursor=` for the next page; None: last

    def __iter__(self) -> Iterator[J]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> J:
        return self.jobs[index]


class JobPage(_Page[JobInfo]):
    """A page of `list`: newest jobs first."""


class DlqEntry(JobInfo, kw_only=True):
    """A `failed` or `dead_letter` job, with why it ended there."""

    reason: str | None = None


class DlqPage(_Page[DlqEntry]):
    """A page of `dlq`: newest entries first."""


class JobResult(msgspec.Struct, kw_only=True):
    """What a finished job produced. `output` is the handler's return value."""

    job_id: str
    success: bool
    output: Any = None
    error: str | None = None
    error_category: str | None = None
    # GopherQueue's SDK names it duration_ns; the wire says duration.
    duration_ns: int = msgspec.field(default=0, name="duration")
    completed_at: datetime | None = None

    @property
    def duration_seconds(self) -> float:
        """How long the handler ran, in seconds."""
        return self.duration_ns / _NS_PER_SECOND


class WaitResult(msgspec.Struct, kw_only=True):
    """The answer of `wait`: the job's state when it ended or when the wait timed out."""

    id: str
    state: JobState
    completed: bool
    success: bool = False
    result: JobResult | None = None
    timed_out: bool = False


class BatchItem(msgspec.Struct, kw_only=True):
    """The fate of one job of a batch, by its position in the request: the job, or why it
    was refused (`error` the message, `error_code` the API error code such as
    `validation_error`, `error_details` the field at fault and such)."""

    index: int
    success: bool
    job: JobInfo | None = None
    error: str | None = None
    error_code: str | None = None
    error_details: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def field(self) -> str | None:
        """The field a `validation_error` or `payload_too_large` is about, if any."""
        field = self.error_details.get("field")
        return field if isinstance(field, str) else None


class BatchResult(msgspec.Struct, kw_only=True):
    """The answer of `submit_batch`."""

    total: int
    accepted: int
    rejected: int
    results: list[BatchItem] = msgspec.field(default_factory=list)

    @property
    def jobs(self) -> list[JobInfo]:
        """The jobs that were accepted, in request order."""
        return [item.job for item in self.results if item.job is not None]


class WorkerStats(msgspec.Struct, kw_only=True):
    """The worker fleet: consumers in all, and per queue."""

    consumers: int = 0
    queues: dict[str, int] = msgspec.field(default_factory=dict)


class QueueStats(msgspec.Struct, kw_only=True):
    """Jobs by state across every queue, and the worker fleet (`stats`)."""

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
    storage_bytes: int = 0  # the job store's size on disk; 0 when the gateway cannot tell
    timestamp: datetime | None = None
    # Not part of the "queue" object on the wire: the client fills it from "workers".
    workers: WorkerStats = msgspec.field(default_factory=WorkerStats)


class StatsAnswer(msgspec.Struct):
    """The body of `GET /api/v1/stats`, before `workers` is folded into QueueStats."""

    queue: QueueStats
    workers: WorkerStats = msgspec.field(default_factory=WorkerStats)

    def merged(self) -> QueueStats:
        """The queue counts carrying the fleet summary."""
        return msgspec.structs.replace(self.queue, workers=self.workers)


class QueueInfo(msgspec.Struct, kw_only=True):
    """One work queue (`queues`). The broker's numbers are None when RabbitMQ could not
    be asked."""

    name: str
    ready: int | None = None  # messages waiting in RabbitMQ
    consumers: int | None = None
    dlq: int | None = None  # messages in its dead-letter queue
    counts: dict[str, int] = msgspec.field(default_factory=dict)  # jobs by state


class Event(msgspec.Struct, kw_only=True):
    """One server-sent event. `data` is the parsed JSON (the raw text when it is not JSON);
    `job` is the JobInfo a `job.*` event carries (without payload and result)."""

    event: str
    data: Any = None
    id: str | None = None
    raw: str = ""
    job: JobInfo | None = None


# GopherQueue's name for it.
SSEEvent = Event
