"""The rules a job's fields obey, each stated once: names, ids, ranges, defaults, limits.

Everything that checks a job (the envelope decoder, a submission, the gateway's request
bodies, a handler's registration) takes its rule from here.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec

from leveret.jobs.durations import format_duration
from leveret.jobs.errors import InvalidJob, PayloadTooLarge
from leveret.jobs.priority import Priority

# `$(?!\n)`, not `$`: in Python `$` also matches before a final newline, so "default\n"
# would pass (msgspec searches with these patterns); the lookahead means the same in
# JSON Schema, where `$` is already the very end.
TYPE_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,128}$(?!\n)"
QUEUE_PATTERN: Final = r"^[a-z0-9_.-]{1,64}$(?!\n)"
# No "." and no "$" (a MongoDB store would read the key as a path or an operator), no ":"
# (the API filters by "key:value").
TAG_KEY_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$(?!\n)"
# The canonical 8-4-4-4-12 form, any case: uuid.UUID() also takes "urn:…", braces and
# hyphens anywhere, which an id must not be.
JOB_ID_PATTERN: Final = r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$(?!\n)"

DEFAULT_QUEUE: Final = "default"
DEFAULT_PRIORITY: Final = Priority.NORMAL
# Attempts a job may have when neither it nor its handler says: the fleet default.
DEFAULT_MAX_ATTEMPTS: Final = 3
MAX_ATTEMPTS_LIMIT: Final = 100
# Longest timeout or backoff step, in seconds: longer is a mistake, and infinity would poison
# the arithmetic of deadlines.
MAX_DURATION: Final = 30 * 86400.0
MAX_DELAY: Final = 365 * 86400.0  # how far ahead a job may be delayed, in seconds
MAX_DEPENDENCIES: Final = 100
MAX_TAGS: Final = 64

_TYPE_RE = re.compile(TYPE_PATTERN)
_QUEUE_RE = re.compile(QUEUE_PATTERN)
_JOB_ID_RE = re.compile(JOB_ID_PATTERN)

JobType = Annotated[str, msgspec.Meta(pattern=TYPE_PATTERN)]
QueueName = Annotated[str, msgspec.Meta(pattern=QUEUE_PATTERN)]
JobId = Annotated[str, msgspec.Meta(pattern=JOB_ID_PATTERN)]
PriorityValue = Annotated[int, msgspec.Meta(ge=int(min(Priority)), le=int(max(Priority)))]
MaxAttempts = Annotated[int, msgspec.Meta(ge=1, le=MAX_ATTEMPTS_LIMIT)]
TimeoutSeconds = Annotated[float, msgspec.Meta(gt=0, le=MAX_DURATION)]
DelaySeconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_DELAY)]
TagKey = Annotated[str, msgspec.Meta(pattern=TAG_KEY_PATTERN)]
TagValue = Annotated[str, msgspec.Meta(max_length=256)]
Tags = Annotated[dict[TagKey, TagValue], msgspec.Meta(max_length=MAX_TAGS)]
Dependencies = Annotated[list[str], msgspec.Meta(max_length=MAX_DEPENDENCIES)]

TYPE_RULE: Final = "must be 1-128 of A-Z a-z 0-9 _ . : -"
QUEUE_RULE: Final = "must be 1-64 of a-z 0-9 _ . -"


def is_valid_type(name: str) -> bool:
    """Whether `name` is a legal job type."""
    return bool(_TYPE_RE.match(name))


def is_valid_queue(name: str) -> bool:
    """Whether `name` is a legal queue name."""
    return bool(_QUEUE_RE.match(name))


def is_job_id(value: str) -> bool:
    """Whether `value` is a job id: a UUID in its canonical form (any case)."""
    return bool(_JOB_ID_RE.match(value))


def check_max_attempts(value: int | None) -> None:
    """InvalidJob unless `value` is None or within 1..MAX_ATTEMPTS_LIMIT."""
    if value is not None and not 1 <= value <= MAX_ATTEMPTS_LIMIT:
        raise InvalidJob("max_attempts", f"must be between 1 and {MAX_ATTEMPTS_LIMIT}")


def check_timeout(value: float | None) -> None:
    """InvalidJob unless `value` is None or a positive number of seconds up to MAX_DURATION."""
    if value is not None and not (0 < value <= MAX_DURATION):
        limit = format_duration(MAX_DURATION)
        raise InvalidJob("timeout", f"must be more than 0s and at most {limit}")


def check_timing(delay: float | None, scheduled_at: datetime | None) -> None:
    """InvalidJob unless at most one of `delay` (seconds, up to MAX_DELAY) and
    `scheduled_at` (timezone-aware) is given."""
    if delay is not None and scheduled_at is not None:
        raise InvalidJob("delay", "give either delay or scheduled_at, not both")
    if delay is not None and not (math.isfinite(delay) and 0 <= delay <= MAX_DELAY):
        raise InvalidJob("delay", f"must be between 0s and {format_duration(MAX_DELAY)}")
    if scheduled_at is not None and scheduled_at.tzinfo is None:
        raise InvalidJob("scheduled_at", "must carry a timezone (Z or an offset)")


_ENCODER = msgspec.msgpack.Encoder()


def check_payload(payload: Any, limit: int) -> None:
    """PayloadTooLarge when `payload` takes more than `limit` bytes as msgpack (how the
    store and the broker carry it); InvalidJob for an integer beyond 64 bits."""
    try:
        size = len(_ENCODER.encode(payload))
    except OverflowError:  # JSON allows any integer; msgpack, and so the store, 64 bits
        raise InvalidJob("payload", "integers must fit in 64 bits") from None
    if size > limit:
        raise PayloadTooLarge("payload", size, limit)
