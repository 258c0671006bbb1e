"""Listening to a fanout or topic exchange through an exclusive queue of this process's own."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from leveret.jobs.model import new_job_id
from leveret.topology import LISTENER_ARGUMENTS

log = logging.getLogger(__name__)

OnBody = Callable[[bytes], None]


async def listen(
    connection: AbstractRobustConnection,
    exchange: str,
    queue_name: str,
    on_body: OnBody,
) -> AbstractQueue:
    """Consume `exchange` through an exclusive, auto-deleted queue `queue_name`, calling
    `on_body` with each message's body (auto-acked: a listener's messages are advisory).

    The queue lives on a robust channel, so after a reconnect it is declared, bound and
    consumed again; whatever was published meanwhile is lost, which listeners allow for.
    """
    channel = await connection.channel(publisher_confirms=False)
    queue = await channel.declare_queue(
        queue_name, exclusive=True, auto_delete=True, arguments=LISTENER_ARGUMENTS
    )
    await queue.bind(exchange, "#")  # everything: a fanout ignores the key, a topic needs it

    async def deliver(message: AbstractIncomingMessage) -> None:
        try:
            on_body(message.body)
        except Exception:  # a listener must never stop on one bad message
            log.exception("listener on %s could not handle a message", exchange)

    await queue.consume(deliver, no_ack=True)
    return queue


def listener_id() -> str:
    """A fresh suffix for a listener queue's name."""
    return new_job_id()[-12:]
