"""Leveret's domain: jobs, their states and moves, priorities, backoff, the wire envelope,
settings, errors and the job stores. Imports nothing else of Leveret's."""

from leveret.jobs.backoff import Backoff, BackoffStrategy
from leveret.jobs.durations import parse_duration
from leveret.jobs.errors import (
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    ConnectionDown,
    ConsumerLost,
    DuplicateJob,
    HandlerError,
    InvalidJob,
    LeveretError,
    MalformedMessage,
    PayloadTooLarge,
    PublishError,
    PublishNacked,
    PublishTimeout,
    Reject,
    Retry,
    StoreError,
    StoreUnavailable,
    TopologyError,
    TopologyMismatch,
    Unroutable,
)
from leveret.jobs.model import Job, new_job_id, utcnow
from leveret.jobs.priority import Priority
from leveret.jobs.rules import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, DEFAULT_QUEUE
from leveret.jobs.settings import QueueType, Settings
from leveret.jobs.states import ACTIVE_STATES, DLQ_STATES, TERMINAL_STATES, TRANSITIONS, JobState

__all__ = [
    "ACTIVE_STATES",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PRIORITY",
    "DEFAULT_QUEUE",
    "DLQ_STATES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Backoff",
    "BackoffStrategy",
    "BrokerError",
    "BrokerUnavailable",
    "ConfigurationError",
    "ConnectionDown",
    "ConsumerLost",
    "DuplicateJob",
    "HandlerError",
    "InvalidJob",
    "Job",
    "JobState",
    "LeveretError",
    "MalformedMessage",
    "PayloadTooLarge",
    "Priority",
    "PublishError",
    "PublishNacked",
    "PublishTimeout",
    "QueueType",
    "Reject",
    "Retry",
    "Settings",
    "StoreError",
    "StoreUnavailable",
    "TopologyError",
    "TopologyMismatch",
    "Unroutable",
    "new_job_id",
    "parse_duration",
    "utcnow",
]
