"""Running jobs: the Worker, its handler registry, the context handlers receive, and the
middleware seam around every job."""

from leveret.jobs.errors import Reject, Retry
from leveret.workers.context import JobContext
from leveret.workers.decision import Action, Decision, decide
from leveret.workers.middleware import CallNext, Middleware, Settlement
from leveret.workers.outcomes import (
    AttemptFailed,
    ErrorCategory,
    Interrupted,
    InterruptReason,
    Outcome,
    Returned,
)
from leveret.workers.registry import Handler, Registry
from leveret.workers.worker import Worker

__all__ = [
    "Action",
    "AttemptFailed",
    "CallNext",
    "Decision",
    "ErrorCategory",
    "Handler",
    "InterruptReason",
    "Interrupted",
    "JobContext",
    "Middleware",
    "Outcome",
    "Registry",
    "Reject",
    "Retry",
    "Returned",
    "Settlement",
    "Worker",
    "decide",
]
