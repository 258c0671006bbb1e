"""The job document: everything the API shows plus what only the engine needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import uuid_utils

from leveret.jobs.backoff import Backoff
from leveret.jobs.rules import (
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    JobType,
    MaxAttempts,
    PriorityValue,
    QueueName,
    TimeoutSeconds,
)
from leveret.jobs.states import JobState

SCHEMA_VERSION = 1


def new_job_id() -> str:
    """A fresh UUIDv7 string: unique, and sortable by creation time."""
    return str(uuid_utils.uuid7())


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Job(msgspec.Struct, kw_only=True):
    """One job, as the store keeps it. Times are timezone-aware UTC; durations are seconds."""

    id: str
    type: JobType
    state: JobState
    queue: QueueName = DEFAULT_QUEUE
    priority: PriorityValue = DEFAULT_PRIORITY
    payload: Any = None
    attempt: int = 0  # attempts started so far; the running one included
    max_attempts: MaxAttempts | None = None  # None: the handler's default
    backoff: Backoff | None = None  # None: the handler's default
    timeout: TimeoutSeconds | None = None
    scheduled_at: datetime | None = None  # when a delayed or retrying job may run next
    depends_on: list[str] = msgspec.field(default_factory=list)
    idempotency_key: str | None = None
    correlation_id: str | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    progress: float | None = None
    progress_message: str | None = None
    checkpoint: Any = None  # the last value the handler saved; handed back on the next attempt
    result: Any = None
    last_error: str | None = None
    error_category: str | None = None
    worker: str | None = None
    created_at: datetime = msgspec.field(default_factory=utcnow)
    updated_at: datetime = msgspec.field(default_factory=utcnow)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    v: int = SCHEMA_VERSION


JOB_FIELDS: frozenset[str] = frozenset(Job.__struct_fields__)
