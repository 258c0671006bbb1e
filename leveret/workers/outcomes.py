"""What one attempt at a job came to: the handler returned, the attempt failed, or the
worker interrupted it. Deciding what follows is `workers.decision`'s business."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_ERROR = 4096  # characters of an error message kept


class ErrorCategory(StrEnum):
    """Why an attempt failed; recorded on the job as `error_category`."""

    ERROR = "error"  # the handler raised an exception
    TIMEOUT = "timeout"  # the handler ran past its time limit
    RETRY = "retry"  # the handler raised Retry
    REJECTED = "rejected"  # the handler raised Reject: a permanent failure
    NO_HANDLER = "no_handler"  # no handler for the job's type on the worker that took it
    LOST = "lost"  # the workers running it died once too often
    UNSERIALISABLE = "unserialisable"  # its result or checkpoint cannot be stored
    RESULT_TOO_LARGE = "result_too_large"  # its result is over the configured limit
    MIDDLEWARE = "middleware"  # a middleware's around_handler raised


class InterruptReason(StrEnum):
    """Why the worker stopped a handler before it ended."""

    SHUTDOWN = "shutdown"  # the worker is stopping: the job goes back to its queue
    CANCELLED = "cancelled"  # a user cancelled the job


@dataclass(frozen=True, slots=True)
class Returned:
    """The handler returned `result`."""

    result: Any


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    """The attempt failed. Whether the job is retried depends on `retryable`, its attempts
    left and the decision; `delay` is set by Retry(delay=…) (None: the job's backoff)."""

    error: str
    category: ErrorCategory
    retryable: bool
    delay: float | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # A handler's 1 MB exception message would otherwise be a 1 MB log line and DLQ
        # header; the job keeps as much of it as its last_error holds.
        if len(self.error) > MAX_ERROR:
            object.__setattr__(self, "error", self.error[:MAX_ERROR])


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The worker stopped the handler, for `reason`."""

    reason: InterruptReason


Outcome = Returned | AttemptFailed | Interrupted
