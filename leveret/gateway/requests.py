"""What the gateway accepts: request bodies as typed structs, and their translation into the
engine's submissions. Durations come as strings ("1h30m") or numbers of seconds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from leveret.jobs.backoff import Backoff, BackoffStrategy
from leveret.jobs.durations import format_duration, parse_duration
from leveret.jobs.errors import InvalidDuration, InvalidJob
from leveret.jobs.rules import (
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    MAX_DEPENDENCIES,
    MAX_DURATION,
    JobId,
    JobType,
    MaxAttempts,
    PriorityValue,
    QueueName,
    Tags,
    is_job_id,
)
from leveret.jobs.submission import Submission

Duration = str | float
MAX_WAIT = 300.0  # seconds: longer waits belong to SSE


def cursor_of(raw: str | None) -> str | None:
    """A listing's `cursor` parameter, canonical; InvalidJob when it is not one we gave out
    (a cursor is the last job id of the previous page)."""
    if not raw:
        return None
    if not is_job_id(raw):
        raise InvalidJob("cursor", "not a cursor this API gave out")
    return raw.lower()


def seconds(field: str, value: Duration | None, *, maximum: float | None = None) -> float | None:
    """`value` in seconds; InvalidJob naming `field` when it is not a duration."""
    if value is None:
        return None
    try:
        parsed = parse_duration(value)
    except (InvalidDuration, ValueError, TypeError):
        message = f"not a duration: {value!r} (use 30s, 5m, 1h30m or seconds)"
        raise InvalidJob(field, message) from None
    if parsed < 0:
        raise InvalidJob(field, "must not be negative")
    if maximum is not None and parsed > maximum:
        raise InvalidJob(field, f"must be at most {format_duration(maximum)}")
    return parsed


class BackoffRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """A retry policy, with durations as strings or seconds."""

    strategy: Literal["exponential", "linear", "constant"] = "exponential"
    initial: Duration = 1.0
    max: Duration = 3600.0
    multiplier: Annotated[float, msgspec.Meta(ge=1, le=100)] = 2.0
    jitter: bool = True

    def to_backoff(self) -> Backoff:
        """The engine's policy; InvalidJob naming the field at fault."""
        initial = seconds("backoff.initial", self.initial, maximum=MAX_DURATION) or 0.0
        ceiling = seconds("backoff.max", self.max, maximum=MAX_DURATION) or 0.0
        if ceiling < initial:
            raise InvalidJob("backoff.max", "must not be less than backoff.initial")
        return Backoff(
            strategy=BackoffStrategy(self.strategy),
            initial=initial,
            max=ceiling,
            multiplier=self.multiplier,
            jitter=self.jitter,
        )


class SubmitRequest(msgspec.Struct, kw_only=True):
    """A job to submit (API.md, "Submit body"). Unknown fields are ignored."""

    type: JobType
    payload: Any = None
    queue: QueueName = DEFAULT_QUEUE
    priority: PriorityValue = DEFAULT_PRIORITY
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    correlation_id: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    delay: Duration | None = None
    scheduled_at: datetime | None = None
    timeout: Duration | None = None
    max_attempts: MaxAttempts | None = None
    backoff: BackoffRequest | None = None
    depends_on: Annotated[list[JobId], msgspec.Meta(max_length=MAX_DEPENDENCIES)] = msgspec.field(
        default_factory=list
    )
    tags: Tags = msgspec.field(default_factory=dict)

    def to_submission(self) -> Submission:
        """The engine's submission; InvalidJob naming the field at fault."""
        timeout = seconds("timeout", self.timeout)
        return Submission(
            type=self.type,
            payload=self.payload,
            queue=self.queue,
            priority=self.priority,
            delay=seconds("delay", self.delay),
            scheduled_at=self.scheduled_at,
            max_attempts=self.max_attempts,
            backoff=self.backoff.to_backoff() if self.backoff is not None else None,
            timeout=timeout,
            idempotency_key=self.idempotency_key,
            correlation_id=self.correlation_id,
            tags=self.tags,
            depends_on=[d.lower() for d in self.depends_on],
        )


class BatchRequest(msgspec.Struct, kw_only=True):
    """Up to `max_batch` jobs; `atomic`: all are stored or none is. Items are checked one by
    one, so that a bad item of a non-atomic batch fails alone."""

    jobs: Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1)]
    atomic: bool = False


class WaitRequest(msgspec.Struct, kw_only=True):
    """How long to wait for a job to finish (at most 5 minutes)."""

    timeout: Duration = 30.0


class CancelRequest(msgspec.Struct, kw_only=True):
    """Why a job is cancelled. `force` is accepted for GopherQueue's clients: a running job
    is always stopped."""

    reason: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    force: bool = False


class RetryRequest(msgspec.Struct, kw_only=True):
    """Whether a retried job starts counting its attempts again."""

    reset_attempts: bool = False


class DlqRetryRequest(msgspec.Struct, kw_only=True):
    """Which DLQ jobs to replay: by id, or all of a queue and/or type (all when empty)."""

    queue: QueueName | None = None
    type: JobType | None = None
    ids: Annotated[list[JobId], msgspec.Meta(max_length=1000)] | None = None
