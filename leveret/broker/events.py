"""Publishing job events to the events exchange, in batches, off the hot path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import aio_pika
import aiormq
import msgspec
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from leveret.jobs.envelope import MSGPACK
from leveret.jobs.events import EventName, JobEvent
from leveret.jobs.model import Job
from leveret.topology import Names

log = logging.getLogger(__name__)

_ENCODER = msgspec.msgpack.Encoder()
_CONNECTION_ERRORS = (
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelClosed,
    ConnectionError,
)
CAPACITY = 10_000  # events waiting to be sent before new ones are dropped
BATCH_MAX = 256  # events in one message at most
# How long emitted events wait for company before they are sent: a busy worker then sends a
# message per few milliseconds, not one per job. Announced events never wait.
LINGER = 0.005
_FLUSH_TIMEOUT = 2.0

EventBatch = list[JobEvent]
"""What one message on the events exchange holds: events of one queue's jobs, in the order
they happened in the process that sent them."""


def routing_key(queue: str) -> str:
    """The routing key of a batch of `queue`'s events: a listener may bind to one queue."""
    return queue


class EventPublisher:
    """Publishes job events in batches, so that announcing a change never makes the change
    wait, and a busy worker sends one message for many events instead of one each.

    Events are advisory: they go without confirms and without `mandatory` (an event nobody
    listens to is simply dropped by the exchange), and when more than CAPACITY are waiting
    (the broker is gone or blocking) new ones are dropped with a warning. Whoever needs the
    truth reads the store; SSE clients and waiters re-read it when their stream reconnects.
    Batches are per queue, and a job never changes queue, so each job's events keep their
    order.
    """

    def __init__(
        self, connection: AbstractRobustConnection, names: Names, *, timeout: float
    ) -> None:
        self._connection = connection
        self._timeout = timeout
        self._exchange_name = names.events_exchange
        self._pending: list[JobEvent] = []
        self._sent: asyncio.Future[None] | None = None  # resolved once _pending is written
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self.dropped = 0

    async def open(self) -> None:
        """Open the channel and start publishing."""
        self._channel = await self._connection.channel(publisher_confirms=False)
        self._exchange = await self._channel.get_exchange(self._exchange_name, ensure=False)
        self._task = asyncio.create_task(self._pump(), name="leveret-events")

    def emit_nowait(self, name: EventName, job: Job) -> None:
        """Announce that `job` (as it now stands) went through `name`, in the next batch.
        Never waits: for what must reach listeners before something else, await `emit`."""
        if self._task is not None:
            self._add(JobEvent.of(name, job))

    async def emit(self, name: EventName, job: Job) -> None:
        """Announce that `job` went through `name`, and wait until the batch holding the
        event is written to the socket: for an event that must reach listeners ahead of
        whatever the caller publishes next (a job's `created` before its worker can say
        `started`). No round trip: events are not confirmed, so concurrent callers share one
        message."""
        if self._task is None:
            return
        written = self._add(JobEvent.of(name, job))
        self._urgent.set()
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.shield(written)
        except TimeoutError:
            # The broker is blocking the connection; the caller's own publish is about to
            # fail the same way.
            log.warning("job %s: event %s not written in time", job.id, name)

    def _add(self, event: JobEvent) -> asyncio.Future[None]:
        if len(self._pending) >= CAPACITY:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("event queue full; %d event(s) dropped so far", self.dropped)
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        self._pending.append(event)
        if self._sent is None:
            self._sent = asyncio.get_running_loop().create_future()
        self._wake.set()
        return self._sent

    async def close(self) -> None:
        """Publish what is waiting (for a moment at most), then stop."""
        if self._task is None:
            return
        self._closing = True
        self._urgent.set()
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FLUSH_TIMEOUT):
                await asyncio.shield(self._task)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _pump(self) -> None:
        assert self._exchange is not None
        while not (self._closing and not self._pending):
            await self._wake.wait()
            if not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LINGER):
                        await self._urgent.wait()
            self._wake.clear()
            if not self._closing:
                self._urgent.clear()
            events, self._pending = self._pending, []
            sent, self._sent = self._sent, None
            try:
                for queue, batch in _batches(events):
                    await self._publish(self._exchange, queue, batch)
            finally:
                if sent is not None and not sent.done():
                    sent.set_result(None)

    async def _publish(self, exchange: AbstractExchange, queue: str, batch: EventBatch) -> None:
        message = aio_pika.Message(_ENCODER.encode(batch), content_type=MSGPACK)
        try:
            await exchange.publish(message, routing_key(queue), mandatory=False)
        except _CONNECTION_ERRORS:
            # Reconnecting: wait for it, try once more, then let these events go.
            await self._connection.ready()
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await exchange.publish(message, routing_key(queue), mandatory=False)


def _batches(events: list[JobEvent]) -> Iterator[tuple[str, EventBatch]]:
    by_queue: dict[str, EventBatch] = {}
    for event in events:
        by_queue.setdefault(event.job.queue, []).append(event)
    for queue, batch in by_queue.items():
        for start in range(0, len(batch), BATCH_MAX):
            yield queue, batch[start : start + BATCH_MAX]
