"""Leveret: background jobs on RabbitMQ, with state you can query.

The names most applications need, in one place.
"""

from broker import BrokerSession, Producer
from jobs import Backoff, Job, JobState, Priority, Reject, Retry, Settings
from leveret.client import Client, SyncClient
from workers import JobContext, Worker

__all__ = [
    "Backoff",
    "BrokerSession",
    "Client",
    "Job",
    "JobContext",
    "JobState",
    "Priority",
    "Producer",
    "Reject",
    "Retry",
    "Settings",
    "SyncClient",
    "Worker",
]
