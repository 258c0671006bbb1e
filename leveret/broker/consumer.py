"""Consuming work queues (a channel with its prefetch and its subscriptions), and the depth
of a queue."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import cast

import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from leveret.broker.delivery import Delivery
from leveret.jobs.errors import BrokerError

log = logging.getLogger(__name__)

OnDelivery = Callable[[Delivery], Awaitable[None]]
_CHANNEL_GONE = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError)


class Consumer:
    """One consuming channel holding at most `prefetch` unacked messages, and the queues it
    consumes. On a robust connection the subscriptions come back after a reconnect.

    Prefetch stays small on purpose: the broker can only reorder by priority the messages
    it still holds, not those already handed to a worker.
    """

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._tags: dict[str, str] = {}  # queue name -> consumer tag

    @classmethod
    async def open(cls, connection: AbstractRobustConnection, prefetch: int) -> Consumer:
        """A consuming channel on `connection` with its prefetch set."""
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=prefetch)
        return cls(channel)

    async def subscribe(self, queue_name: str, on_delivery: OnDelivery) -> None:
        """Consume `queue_name` (already declared) with manual acks."""

        async def deliver(message: AbstractIncomingMessage) -> None:
            await on_delivery(Delivery(message))

        queue = await self._channel.get_queue(queue_name, ensure=True)
        self._tags[queue_name] = await queue.consume(deliver, no_ack=False)

    async def missing(self) -> list[str]:
        """The queues whose consumer the broker no longer has (it cancelled it: the queue
        was deleted, say). Empty while reconnecting: aio-pika restores consumers itself."""
        if self._channel.is_closed:
            return []
        underlay = cast(aiormq.Channel, await self._channel.get_underlay_channel())
        active = underlay.consumers
        return [queue for queue, tag in self._tags.items() if tag not in active]

    async def cancel(self) -> None:
        """Stop consuming: the broker sends nothing more; unacked messages stay with us."""
        if self._channel.is_closed:
            return
        for queue_name, tag in self._tags.items():
            try:
                queue = await self._channel.get_queue(queue_name, ensure=False)
                await queue.cancel(tag)
            except _CHANNEL_GONE:  # its deliveries requeue when the channel closes
                log.warning("could not cancel the consumer on %s", queue_name, exc_info=True)

    async def close(self) -> None:
        """Close the channel: whatever is still unacked goes back to its queue."""
        if not self._channel.is_closed:
            await self._channel.close()


async def queue_depth(connection: AbstractRobustConnection, queue_name: str) -> tuple[int, int]:
    """(ready messages, consumers) of an existing queue, by a passive declare."""
    channel = await connection.channel(publisher_confirms=False)
    try:
        declared = await channel.declare_queue(queue_name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        raise BrokerError(f"queue {queue_name!r} does not exist") from None
    finally:
        if not channel.is_closed:
            await channel.close()
    result = declared.declaration_result
    return result.message_count or 0, result.consumer_count or 0


async def purge_queue(connection: AbstractRobustConnection, queue_name: str) -> int:
    """Remove every ready message of `queue_name`; how many there were (0 if no queue)."""
    channel = await connection.channel(publisher_confirms=False)
    try:
        queue = await channel.declare_queue(queue_name, passive=True)
        result = await queue.purge()
    except aiormq.exceptions.ChannelNotFoundEntity:
        return 0
    finally:
        if not channel.is_closed:
            await channel.close()
    return int(result.message_count or 0)
