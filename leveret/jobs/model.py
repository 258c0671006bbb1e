"""The job document: everything the API shows plus what only the engine needs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import uuid_utils

from leveret.jobs.backoff import Backoff
from leveret.jobs.states import JobState

# `$(?!\n)`, not `$`: in Python `$` also matches before a final newline, so "default\n"
# would pass (msgspec searches with these patterns); the lookahead means the same in
# JSON Schema, where `$` is already the very end.
TYPE_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$(?!\n)"
QUEUE_PATTERN = r"^[a-z0-9_.-]{1,64}$(?!\n)"
# No "." and no "$" (a MongoDB store would read the key as a path or an operator), no ":"
# (the API filters by "key:value").
TAG_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$(?!\n)"
DEFAULT_QUEUE = "default"
SCHEMA_VERSION = 1

_TYPE_RE = re.compile(TYPE_PATTERN)
_QUEUE_RE = re.compile(QUEUE_PATTERN)

JobType = Annotated[str, msgspec.Meta(pattern=TYPE_PATTERN)]
QueueName = Annotated[str, msgspec.Meta(pattern=QUEUE_PATTERN)]
PriorityValue = Annotated[int, msgspec.Meta(ge=0, le=4)]
MaxAttempts = Annotated[int, msgspec.Meta(ge=1, le=100)]
TimeoutSeconds = Annotated[float, msgspec.Meta(gt=0, le=30 * 86400)]
TagKey = Annotated[str, msgspec.Meta(pattern=TAG_KEY_PATTERN)]
TagValue = Annotated[str, msgspec.Meta(max_length=256)]
Tags = Annotated[dict[TagKey, TagValue], msgspec.Meta(max_length=64)]


def new_job_id() -> str:
    """A fresh UUIDv7 string: unique, and sortable by creation time."""
    return str(uuid_utils.uuid7())


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def is_valid_type(name: str) -> bool:
    """Whether `name` is a legal job type."""
    return bool(_TYPE_RE.match(name))


def is_valid_queue(name: str) -> bool:
    """Whether `name` is a legal queue name."""
    return bool(_QUEUE_RE.match(name))


class Job(msgspec.Struct, kw_only=True):
    """One job, as the store keeps it. Times are timezone-aware UTC; durations are seconds."""

    id: str
    type: JobType
    state: JobState
    queue: QueueName = DEFAULT_QUEUE
    priority: PriorityValue = 2
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
    trace: str | None = None  # W3C traceparent of the submitting span
    created_at: datetime = msgspec.field(default_factory=utcnow)
    updated_at: datetime = msgspec.field(default_factory=utcnow)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    v: int = SCHEMA_VERSION


JOB_FIELDS: frozenset[str] = frozenset(Job.__struct_fields__)
