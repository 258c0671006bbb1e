"""The gateway's one subscription to the events exchange, fanned out in-process to SSE
streams and to long-poll waiters, so that no waiter polls the store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec

from leveret.broker import BrokerSession
from leveret.broker.events import EventBatch
from leveret.broker.listener import listen, listener_id
from leveret.jobs.events import JobEvent
from leveret.jobs.states import TERMINAL_STATES

log = logging.getLogger(__name__)

STREAM_BUFFER = 1000  # events a slow SSE client may fall behind by before losing the oldest
_DECODER = msgspec.msgpack.Decoder(EventBatch)


@dataclass(frozen=True)
class EventFilter:
    """Which events an SSE client wants; None matches everything."""

    job_id: str | None = None
    type: str | None = None
    queue: str | None = None

    def matches(self, event: JobEvent) -> bool:
        """Whether `event` passes this filter."""
        job = event.job
        return (
            (self.job_id is None or job.id == self.job_id)
            and (self.type is None or job.type == self.type)
            and (self.queue is None or job.queue == self.queue)
        )


class Subscription:
    """One SSE client's events, buffered; the oldest are dropped when it falls behind."""

    def __init__(self, wanted: EventFilter) -> None:
        self.wanted = wanted
        self._behind = False
        self._events: asyncio.Queue[JobEvent] = asyncio.Queue(STREAM_BUFFER)

    def offer(self, event: JobEvent) -> None:
        """Buffer `event` if it is wanted."""
        if not self.wanted.matches(event):
            return
        if self._events.full():
            self._events.get_nowait()
            if not self._behind:
                self._behind = True
                log.warning(
                    "an SSE client fell %d events behind; dropping its oldest", STREAM_BUFFER
                )
        self._events.put_nowait(event)

    async def next(self, within: float) -> JobEvent | None:
        """The next event, or None after `within` seconds without one."""
        try:
            async with asyncio.timeout(within):
                return await self._events.get()
        except TimeoutError:
            return None


class EventHub:
    """Listens to every job event once and hands each to whoever is interested."""

    def __init__(self, session: BrokerSession) -> None:
        self._session = session
        self._streams: set[Subscription] = set()
        self._waiters: dict[str, set[asyncio.Event]] = {}

    async def open(self) -> None:
        """Start listening. After a reconnect, events published meanwhile are lost, so every
        waiter is woken to look at the store again."""
        names = self._session.names
        queue_name = names.listener_queue("events", listener_id())
        await listen(self._session.consuming, names.events_exchange, queue_name, self._on_body)
        self._session.consuming.reconnect_callbacks.add(self._on_reconnect)

    def close(self) -> None:
        """Stop waking anyone (the session's connection closes the listener)."""
        self._session.consuming.reconnect_callbacks.discard(self._on_reconnect)
        self._wake_all()

    @contextmanager
    def stream(self, wanted: EventFilter) -> Iterator[Subscription]:
        """Events matching `wanted`, from now until the block ends."""
        subscription = Subscription(wanted)
        self._streams.add(subscription)
        try:
            yield subscription
        finally:
            self._streams.discard(subscription)

    @asynccontextmanager
    async def finish_of(self, job_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set when `job_id` reaches a terminal state (or the hub reconnected: look
        at the store to know which). Enter it *before* reading the job, so that no change can
        slip between the read and the wait."""
        woken = asyncio.Event()
        self._waiters.setdefault(job_id, set()).add(woken)
        try:
            yield woken
        finally:
            waiters = self._waiters.get(job_id)
            if waiters is not None:
                waiters.discard(woken)
                if not waiters:
                    del self._waiters[job_id]

    def _on_body(self, body: bytes) -> None:
        if not self._streams and not self._waiters:
            return  # nobody to tell: a busy fleet's events are not worth decoding
        try:
            batch = _DECODER.decode(body)
        except msgspec.DecodeError:
            log.warning("ignored an unreadable batch of job events")
            return
        for event in batch:
            for subscription in self._streams:
                subscription.offer(event)
            if event.job.state in TERMINAL_STATES:
                for woken in self._waiters.get(event.job.id, ()):
                    woken.set()

    async def _on_reconnect(self, *_: Any) -> None:
        self._wake_all()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for woken in waiters:
                woken.set()
