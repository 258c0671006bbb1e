"""Running jobs: the Worker, its handler registry and the context handlers receive."""

from jobs.errors import Reject, Retry
from workers.context import JobContext
from workers.registry import Handler, Registry
from workers.worker import Worker

__all__ = ["Handler", "JobContext", "Registry", "Reject", "Retry", "Worker"]
