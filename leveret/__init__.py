"""Leveret: background jobs on RabbitMQ, with state you can query.

The names most applications need, in one place. They load on first use, so that importing
one component (`leveret.jobs`, say) does not import the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leveret.broker import BrokerSession, Producer
    from leveret.client import Client, SyncClient
    from leveret.jobs import Backoff, Job, JobState, Priority, Reject, Retry, Settings
    from leveret.workers import JobContext, Middleware, Worker

__all__ = [
    "Backoff",
    "BrokerSession",
    "Client",
    "Job",
    "JobContext",
    "JobState",
    "Middleware",
    "Priority",
    "Producer",
    "Reject",
    "Retry",
    "Settings",
    "SyncClient",
    "Worker",
]

_HOMES = {
    "Backoff": "leveret.jobs",
    "BrokerSession": "leveret.broker",
    "Client": "leveret.client",
    "Job": "leveret.jobs",
    "JobContext": "leveret.workers",
    "JobState": "leveret.jobs",
    "Middleware": "leveret.workers",
    "Priority": "leveret.jobs",
    "Producer": "leveret.broker",
    "Reject": "leveret.jobs",
    "Retry": "leveret.jobs",
    "Settings": "leveret.jobs",
    "SyncClient": "leveret.client",
    "Worker": "leveret.workers",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'leveret' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
