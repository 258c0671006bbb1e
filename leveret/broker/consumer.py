"""Consumer primitives: a consuming channel with its prefetch, subscriptions, queue depth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from leveret.jobs.errors import BrokerError

OnMessage = Callable[[AbstractIncomingMessage], Awaitable[None]]


async def consuming_channel(connection: AbstractRobustConnection, prefetch: int) -> AbstractChannel:
    """A channel on the consuming connection holding at most `prefetch` unacked messages.

    Prefetch stays small on purpose: the broker can only reorder by priority the messages
    it still holds, not those already handed to a worker.
    """
    channel = await connection.channel(publisher_confirms=False)
    await channel.set_qos(prefetch_count=prefetch)
    return channel


async def subscribe(channel: AbstractChannel, queue_name: str, on_message: OnMessage) -> str:
    """Consume `queue_name` (already declared) with manual acks; returns the consumer tag.

    On a robust channel the subscription is restored after a reconnect.
    """
    queue = await channel.get_queue(queue_name, ensure=True)
    return await queue.consume(on_message, no_ack=False)


async def unsubscribe(channel: AbstractChannel, queue_name: str, consumer_tag: str) -> None:
    """Stop consuming: the broker sends nothing more, unacked messages stay with us."""
    queue = await channel.get_queue(queue_name, ensure=False)
    await queue.cancel(consumer_tag)


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
