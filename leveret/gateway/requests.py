"""What the gateway accepts: request bodies as typed structs, and their translation into the
engine's submissions. Durations come as strings ("1h30m") or numbers of seconds.

A submit also takes the other job queues' spellings of the same things, so that their
examples work unchanged: Gopher's `execute_at`, `max_retries` and priority names, and
GoQuorra's `delay_seconds`. Two spellings of one thing in one body are refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from leveret.jobs.backoff import Backoff, BackoffStrategy
from leveret.jobs.durations import format_duration, parse_duration
from leveret.jobs.errors import InvalidDuration, InvalidJob
from leveret.jobs.priority import Priority
from leveret.jobs.rules import (
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    MAX_ATTEMPTS_LIMIT,
    MAX_DEPENDENCIES,
    MAX_DURATION,
    DelaySeconds,
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

PriorityName = Literal["critical", "high", "normal", "low", "bulk"]
"""Gopher's names for the priorities 0 to 4."""
# Gopher counts the retries after the first attempt: max_retries 0 is one attempt.
MaxRetries = Annotated[int, msgspec.Meta(ge=0, le=MAX_ATTEMPTS_LIMIT - 1)]
RECURRING_REFUSED = (
    "recurring jobs are not available yet; submit without `recurring` to run the job once"
)


def _about(description: str) -> msgspec.Meta:
    """A field's description in the OpenAPI document."""
    return msgspec.Meta(description=description)


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
    """A job to submit. Unknown fields are ignored. `delay_seconds` (GoQuorra),
    `execute_at` and `max_retries` (Gopher) are other spellings of `delay`, `scheduled_at`
    and `max_attempts` - 1; `priority` may be a name; `recurring` (Gopher) is refused
    until schedules exist."""

    type: JobType
    payload: Any = None
    queue: QueueName = DEFAULT_QUEUE
    priority: Annotated[
        PriorityValue | PriorityName,
        _about("0 (critical) to 4 (bulk), or the name: critical, high, normal, low, bulk"),
    ] = DEFAULT_PRIORITY
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    correlation_id: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    delay: Annotated[
        Duration | None,
        _about('wait this long first: "30s", "1h30m" or seconds; not with scheduled_at'),
    ] = None
    delay_seconds: Annotated[
        DelaySeconds | None, _about("GoQuorra's delay, in seconds (0 to a year); not with delay")
    ] = None
    scheduled_at: Annotated[
        datetime | None, _about("run at this time (RFC 3339, with a zone); not with delay")
    ] = None
    execute_at: Annotated[
        datetime | None, _about("Gopher's name for scheduled_at; not with it")
    ] = None
    timeout: Duration | None = None
    max_attempts: MaxAttempts | None = None
    max_retries: Annotated[
        MaxRetries | None,
        _about("Gopher's: retries after the first attempt (0 to 99); not with max_attempts"),
    ] = None
    backoff: BackoffRequest | None = None
    depends_on: Annotated[list[JobId], msgspec.Meta(max_length=MAX_DEPENDENCIES)] = msgspec.field(
        default_factory=list
    )
    tags: Tags = msgspec.field(default_factory=dict)
    recurring: Annotated[Any, _about(f"Gopher's recurring jobs: {RECURRING_REFUSED}")] = None

    def to_submission(self) -> Submission:
        """The engine's submission; InvalidJob naming the field at fault."""
        if self.recurring is not None:
            raise InvalidJob("recurring", RECURRING_REFUSED)
        delay_field, delay = _one_of(
            ("delay", seconds("delay", self.delay)), ("delay_seconds", self.delay_seconds)
        )
        at_field, at = _one_of(("scheduled_at", self.scheduled_at), ("execute_at", self.execute_at))
        if delay is not None and at is not None:
            raise InvalidJob(delay_field, f"give either {delay_field} or {at_field}, not both")
        retries = None if self.max_retries is None else self.max_retries + 1
        _, max_attempts = _one_of(("max_attempts", self.max_attempts), ("max_retries", retries))
        return Submission(
            type=self.type,
            payload=self.payload,
            queue=self.queue,
            priority=priority_of(self.priority),
            delay=delay,
            scheduled_at=at,
            max_attempts=max_attempts,
            backoff=self.backoff.to_backoff() if self.backoff is not None else None,
            timeout=seconds("timeout", self.timeout),
            idempotency_key=self.idempotency_key,
            correlation_id=self.correlation_id,
            tags=self.tags,
            depends_on=[d.lower() for d in self.depends_on],
        )


def priority_of(value: int | str) -> Priority:
    """A priority given as a number (0-4) or by Gopher's name for it ("high")."""
    return Priority[value.upper()] if isinstance(value, str) else Priority(value)


_V = TypeVar("_V")


def _one_of(first: tuple[str, _V | None], second: tuple[str, _V | None]) -> tuple[str, _V | None]:
    """The one of two spellings of a field that was given (name and value; the first when
    neither was); InvalidJob naming the second when both were."""
    if first[1] is not None and second[1] is not None:
        raise InvalidJob(second[0], f"give either {first[0]} or {second[0]}, not both")
    return second if second[1] is not None else first


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
