"""Publishing job events to the events exchange, off the hot path."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aio_pika
import aiormq
import msgspec
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from jobs.envelope import MSGPACK
from jobs.events import EventName, JobEvent
from jobs.model import Job
from topology import Names

log = logging.getLogger(__name__)

_ENCODER = msgspec.msgpack.Encoder()
_CONNECTION_ERRORS = (
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelClosed,
    ConnectionError,
)
CAPACITY = 10_000
_FLUSH_TIMEOUT = 2.0


def _message(event: JobEvent) -> aio_pika.Message:
    return aio_pika.Message(
        _ENCODER.encode(event), content_type=MSGPACK, message_id=event.id, type=str(event.name)
    )


def routing_key(event: JobEvent) -> str:
    """`<name>.<queue>`: a listener may bind to one kind of event, or one queue's."""
    return f"{event.name}.{event.job.queue}"


class EventPublisher:
    """Publishes job events from a queue of its own, so that announcing a change never makes
    the change wait.

    Events are advisory: they go without confirms, and when more than CAPACITY are waiting
    (the broker is gone or blocking) new ones are dropped with a warning. Whoever needs the
    truth reads the store; SSE clients and waiters re-read it when their stream reconnects.
    """

    def __init__(
        self, connection: AbstractRobustConnection, names: Names, *, timeout: float
    ) -> None:
        self._connection = connection
        self._timeout = timeout
        self._exchange_name = names.events_exchange
        self._queue: asyncio.Queue[JobEvent] = asyncio.Queue(CAPACITY)
        self._task: asyncio.Task[None] | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self.dropped = 0

    async def open(self) -> None:
        """Open the channel and start publishing."""
        self._channel = await self._connection.channel(publisher_confirms=False)
        self._exchange = await self._channel.get_exchange(self._exchange_name, ensure=False)
        self._task = asyncio.create_task(self._pump(), name="leveret-events")

    def emit(self, name: EventName, job: Job) -> None:
        """Announce that `job` (as it now stands) went through `name`. Never waits."""
        if self._task is not None:
            self._enqueue(JobEvent.of(name, job))

    async def announce(self, name: EventName, job: Job) -> None:
        """Announce now, ahead of whatever the caller publishes next: a job's `created`
        must reach listeners before its worker can say `started`. Without confirms this
        costs a socket write, not a round trip."""
        if self._exchange is None or self._task is None:
            return
        event = JobEvent.of(name, job)
        try:
            async with asyncio.timeout(self._timeout):
                await self._exchange.publish(_message(event), routing_key(event))
        except _CONNECTION_ERRORS:
            self._enqueue(event)  # not sent: the pump sends it once reconnected
        except TimeoutError:
            # The broker is blocking the connection; the frame may be on its way already,
            # and the caller's own publish is about to fail the same way.
            log.warning("job %s: event %s not confirmed written in time", job.id, name)

    def _enqueue(self, event: JobEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("event queue full; %d event(s) dropped so far", self.dropped)

    async def close(self) -> None:
        """Publish what is waiting (for a moment at most), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FLUSH_TIMEOUT):
                await self._queue.join()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _pump(self) -> None:
        assert self._exchange is not None
        while True:
            event = await self._queue.get()
            try:
                await self._publish(self._exchange, event)
            finally:
                self._queue.task_done()

    async def _publish(self, exchange: AbstractExchange, event: JobEvent) -> None:
        message = _message(event)
        try:
            await exchange.publish(message, routing_key(event))
        except _CONNECTION_ERRORS:
            # Reconnecting: wait for it, try once more, then let this event go.
            await self._connection.ready()
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await exchange.publish(message, routing_key(event))
