"""What a Leveret process holds open on RabbitMQ: two connections, a publisher, a router,
and the events it announces."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aio_pika.abc import AbstractRobustConnection

from leveret.broker.connection import connect
from leveret.broker.declare import declare
from leveret.broker.events import EventPublisher
from leveret.broker.hooks import PublishHook
from leveret.broker.publisher import Publisher
from leveret.broker.router import JobRouter
from leveret.jobs.settings import Settings
from leveret.topology import Names, QueueOptions, shared_topology

log = logging.getLogger(__name__)


class BrokerSession:
    """Separate publishing and consuming connections (a publisher blocked by a broker alarm
    must not stop acks), the shared topology declared, and a router over the publisher."""

    def __init__(
        self,
        settings: Settings,
        publishing: AbstractRobustConnection,
        consuming: AbstractRobustConnection,
        hooks: Sequence[PublishHook] = (),
    ) -> None:
        self.settings = settings
        self.names = Names(settings.namespace)
        self.options = QueueOptions(
            queue_type=settings.queue_type, delivery_limit=settings.delivery_limit
        )
        self.publishing = publishing
        self.consuming = consuming
        self.publisher = Publisher(publishing, timeout=settings.publish_timeout)
        self.router = JobRouter(self.publisher, publishing, self.names, self.options, hooks)
        self.events = EventPublisher(publishing, self.names, timeout=settings.publish_timeout)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: Settings, *, name: str, hooks: Sequence[PublishHook] = ()
    ) -> AsyncIterator[BrokerSession]:
        """Connect, declare the shared topology, and close everything on exit. `hooks` see
        every job message this session publishes (workers pass their middleware)."""
        publishing = await connect(settings.amqp_url, name=f"{name}/publish")
        try:
            consuming = await connect(settings.amqp_url, name=f"{name}/consume")
        except BaseException:
            await publishing.close()
            raise
        session = cls(settings, publishing, consuming, hooks)
        try:
            await session._start()
            yield session
        finally:
            await session.events.close()
            await session.publisher.close()
            await consuming.close()
            await publishing.close()

    async def _start(self) -> None:
        await declare(self.publishing, shared_topology(self.names, self.options))
        await self.publisher.open()
        await self.events.open()
        # After a reconnect the broker may have lost non-durable state or been reset:
        # declare again before the next publish.
        self.publishing.reconnect_callbacks.add(self._on_reconnect)

    async def _on_reconnect(self, *_: Any) -> None:
        log.warning("reconnected to RabbitMQ; declaring the topology again")
        self.router.forget_queues()
        await declare(self.publishing, shared_topology(self.names, self.options))
