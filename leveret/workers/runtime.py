"""A running worker: consuming its queues through the pipeline, stopping gracefully."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from leveret.broker import BrokerSession, Consumer, Delivery, OnDelivery, queue_depth
from leveret.broker.control import CancelJob, Command, listen_commands
from leveret.jobs.errors import ConfigurationError, ConsumerLost
from leveret.jobs.model import new_job_id
from leveret.jobs.settings import Settings
from leveret.jobs.states import JobState
from leveret.jobs.store.protocol import JobStore
from leveret.workers.middleware import Stack
from leveret.workers.outcomes import InterruptReason
from leveret.workers.pipeline import Pipeline
from leveret.workers.registry import Handler, Registry
from leveret.workers.run import Runner

log = logging.getLogger(__name__)

_BUSY_STATES = frozenset(
    {JobState.SCHEDULED, JobState.RUNNING, JobState.RETRYING, JobState.DELAYED}
)
_DRAIN_POLL = 0.05
# How often a worker checks that its consumers still exist, and for how many checks in a row
# one may be missing (aio-pika restores consumers itself after a reconnect) before giving up.
CONSUMER_CHECK_INTERVAL = 5.0
CONSUMER_CHECKS_MISSING = 3


def worker_id() -> str:
    """An id for this worker process: host, pid and a random suffix."""
    return f"{socket.gethostname()}/{os.getpid()}/{new_job_id()[-8:]}"


class Runtime:
    """One worker process's consuming side, from subscribe to graceful stop."""

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        store: JobStore,
        session: BrokerSession,
        stack: Stack,
    ) -> None:
        self.id = worker_id()
        self.queues = tuple(dict.fromkeys((*settings.queues, *sorted(registry.queues()))))
        self._registry = registry
        self._settings = settings
        self._store = store
        self._session = session
        self._runner = Runner(settings, store, session.events, stack)
        self._pipeline = Pipeline(
            worker_id=self.id,
            registry=registry,
            store=store,
            session=session,
            runner=self._runner,
            stack=stack,
        )
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._deliveries: set[asyncio.Task[Any]] = set()
        self._consumer: Consumer | None = None

    async def start(self) -> None:
        """Declare this worker's queues and start consuming them."""
        for handler in self._registry:
            _check_timeout(handler, self._settings.consumer_timeout)
        for queue in self.queues:
            await self._session.router.ensure_queue(queue)
        consumer = await Consumer.open(self._session.consuming, self._settings.effective_prefetch)
        self._consumer = consumer
        for queue in self.queues:
            await consumer.subscribe(
                self._session.names.work_queue(queue), self._on_delivery(queue)
            )
        await listen_commands(self._session.consuming, self._session.names, self._on_command)
        log.info("worker %s consuming %s", self.id, ", ".join(self.queues))

    def _on_delivery(self, queue: str) -> OnDelivery:
        async def on_delivery(delivery: Delivery) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._deliveries.add(task)
            try:
                async with self._slots:
                    await self._pipeline.handle(queue, delivery)
            finally:
                self._deliveries.discard(task)

        return on_delivery

    async def watch_consumers(self) -> None:
        """Raise ConsumerLost once a consumer has been missing from an open channel for
        CONSUMER_CHECKS_MISSING checks in a row: the broker cancelled it (its queue was
        deleted, say) and it did not come back. Never returns otherwise."""
        misses: dict[str, int] = {}
        while True:
            await asyncio.sleep(CONSUMER_CHECK_INTERVAL)
            if self._consumer is None:
                continue
            missing = set(await self._consumer.missing())
            for queue in self.queues:
                name = self._session.names.work_queue(queue)
                misses[queue] = misses.get(queue, 0) + 1 if name in missing else 0
                if misses[queue] >= CONSUMER_CHECKS_MISSING:
                    raise ConsumerLost(queue)

    def _on_command(self, command: Command) -> None:
        if isinstance(command, CancelJob) and self.cancel_job(command.job_id):
            log.info("job %s: cancelled while running", command.job_id)

    def cancel_job(self, job_id: str) -> bool:
        """Stop the handler running `job_id` here, if any (the caller recorded the state)."""
        return self._runner.interrupt(job_id, InterruptReason.CANCELLED)

    async def drained(self) -> None:
        """Return once nothing is left to do: no delivery in hand, the work queues empty, and
        no job of these queues waiting or running in the store (twice in a row)."""
        quiet = 0
        while quiet < 2:
            await asyncio.sleep(_DRAIN_POLL)
            quiet = quiet + 1 if await self._idle() else 0

    async def _idle(self) -> bool:
        if self._deliveries:
            return False
        for queue in self.queues:
            ready, _ = await queue_depth(
                self._session.consuming, self._session.names.work_queue(queue)
            )
            if ready:
                return False
        counts = await self._store.counts()
        return not any(
            n
            for queue in self.queues
            for state, n in counts.get(queue, {}).items()
            if state in _BUSY_STATES
        )

    async def stop(self, grace: float) -> None:
        """Stop consuming, let running jobs finish for `grace` seconds, hand the rest back."""
        self._pipeline.stopping = True
        if self._consumer is not None:
            await self._consumer.cancel()
        pending = set(self._deliveries)
        if pending:
            log.info("waiting up to %gs for %d job(s) to finish", grace, self._runner.running)
            _, pending = await asyncio.wait(pending, timeout=grace)
        if pending:
            log.warning("handing %d unfinished job(s) back to the queue", self._runner.running)
            self._runner.interrupt_all(InterruptReason.SHUTDOWN)
            await asyncio.wait(pending)
        if self._consumer is not None:
            await self._consumer.close()
        self._runner.close()


def _check_timeout(handler: Handler, consumer_timeout: float) -> None:
    # RabbitMQ closes the channel of a consumer that holds a delivery past consumer_timeout,
    # requeuing every job on it: refuse to start rather than find out in production.
    if handler.timeout is not None and handler.timeout > consumer_timeout:
        raise ConfigurationError(
            f"handler {handler.name!r} timeout {handler.timeout:g}s exceeds the broker's "
            f"consumer_timeout ({consumer_timeout:g}s); raise consumer_timeout on the broker "
            "and LEVERET_CONSUMER_TIMEOUT, or shorten the handler's timeout"
        )
