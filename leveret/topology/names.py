"""Every exchange and queue name Leveret uses, derived from the namespace in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Names:
    """Names under one namespace (`leveret` by default; tests use a fresh one per run)."""

    namespace: str

    @property
    def jobs_exchange(self) -> str:
        """Direct exchange routing a job to its work queue by the queue's name."""
        return f"{self.namespace}.jobs"

    @property
    def delay_exchange(self) -> str:
        """Headers exchange routing a delayed message to its tier queue."""
        return f"{self.namespace}.delay"

    @property
    def dead_letter_exchange(self) -> str:
        """Direct exchange routing a dead message to its queue's DLQ."""
        return f"{self.namespace}.dlx"

    @property
    def events_exchange(self) -> str:
        """Topic exchange of job state changes."""
        return f"{self.namespace}.events"

    @property
    def control_exchange(self) -> str:
        """Fanout exchange of fleet commands (cancel job X)."""
        return f"{self.namespace}.control"

    def work_queue(self, queue: str) -> str:
        """The work queue of Leveret queue `queue`."""
        return f"{self.namespace}.q.{queue}"

    def delay_queue(self, tier_ms: int) -> str:
        """The delay-tier queue whose messages wait `tier_ms` milliseconds."""
        return f"{self.namespace}.delay.{tier_ms}"

    def dead_letter_queue(self, queue: str) -> str:
        """The DLQ of Leveret queue `queue`."""
        return f"{self.namespace}.dlq.{queue}"

    def listener_queue(self, exchange: str, owner: str) -> str:
        """The exclusive queue by which process `owner` listens to `exchange` (events or
        control); it goes away with the process's connection."""
        return f"{self.namespace}.listen.{exchange}.{owner}"
