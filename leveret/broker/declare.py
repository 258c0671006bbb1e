"""Declaring a TopologySpec on RabbitMQ, idempotently, with mismatches named."""

from __future__ import annotations

import contextlib
import re

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection

from leveret.jobs.errors import ConnectionDown, TopologyMismatch
from leveret.topology import TopologySpec

_ARGUMENT = re.compile(r"inequivalent arg '([^']+)'")
_CONNECTION_LOST = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
)


async def declare(connection: AbstractConnection, spec: TopologySpec) -> None:
    """Declare every exchange, queue and binding in `spec`; re-declaring is harmless.

    Uses a channel of its own, because a refused declare closes the channel it came on.
    Raises TopologyMismatch naming the queue or exchange and the argument at fault, and
    ConnectionDown while the connection is lost.
    """
    try:
        channel = await connection.channel(publisher_confirms=False)
    except (RuntimeError, aiormq.exceptions.AMQPConnectionError, ConnectionError):
        # aio-pika's "Connection was not opened": a robust connection between attempts.
        raise ConnectionDown() from None
    try:
        await _declare_on(channel, spec)
    except _CONNECTION_LOST:
        # The connection dropped mid-declare: the same condition as above, not a raw
        # aiormq error for the caller to puzzle over (the gateway would answer 500).
        raise ConnectionDown() from None
    finally:
        if not channel.is_closed:
            with contextlib.suppress(*_CONNECTION_LOST):
                await channel.close()


async def _declare_on(channel: AbstractChannel, spec: TopologySpec) -> None:
    for exchange in spec.exchanges:
        try:
            await channel.declare_exchange(
                exchange.name, aio_pika.ExchangeType(exchange.kind.value), durable=True
            )
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise _mismatch(exchange.name, exc) from None
    for queue in spec.queues:
        try:
            await channel.declare_queue(queue.name, durable=True, arguments=queue.arguments)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise _mismatch(queue.name, exc) from None
    for binding in spec.bindings:
        queue_ = await channel.get_queue(binding.queue, ensure=False)
        await queue_.bind(binding.exchange, binding.routing_key, arguments=binding.arguments)


def _mismatch(name: str, exc: Exception) -> TopologyMismatch:
    detail = str(exc.args[0] if exc.args else exc)
    match = _ARGUMENT.search(detail)
    return TopologyMismatch(name, match.group(1) if match else None, detail)
