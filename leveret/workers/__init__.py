"""Running jobs: the Worker, its handler registry and the context handlers receive."""

from leveret.jobs.errors import Reject, Retry
from leveret.workers.context import JobContext
from leveret.workers.registry import Handler, Registry
from leveret.workers.worker import Worker

__all__ = ["Handler", "JobContext", "Registry", "Reject", "Retry", "Worker"]
