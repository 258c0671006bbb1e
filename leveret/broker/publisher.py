"""Publishing with confirms and mandatory routing, where every failure is an exception."""

from __future__ import annotations

import asyncio

import aio_pika
import aio_pika.exceptions
import aiormq
from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection

from leveret.jobs.errors import PublishError, PublishNacked, PublishTimeout, Unroutable

_CONNECTION_ERRORS = (
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelClosed,
    ConnectionError,
)
# Seconds between a publish that met a lost connection and the next try.
RETRY_PAUSE = 0.05


class Publisher:
    """Publishes on one confirming channel; many publishes may be in flight at once, so
    concurrent callers are pipelined by the broker's confirms rather than serialised."""

    def __init__(self, connection: AbstractRobustConnection, *, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout
        self._channel: AbstractRobustChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    @property
    def timeout(self) -> float:
        """Seconds a publish may wait for its confirm."""
        return self._timeout

    async def open(self) -> None:
        """Open the confirming channel."""
        # on_return_raises: aio-pika otherwise hands an unroutable message back silently.
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )

    async def close(self) -> None:
        """Close the channel."""
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None

    async def publish(self, exchange: str, routing_key: str, message: aio_pika.Message) -> None:
        """Publish and wait for the broker's confirm.

        Raises Unroutable when no queue takes the message, PublishNacked when the broker
        refuses it, PublishTimeout when no answer comes in time (a blocked broker), and
        PublishError when the connection drops and does not come back in time. A publish
        retried after a lost confirm may reach the queue twice: deliveries are idempotent.
        """
        try:
            async with asyncio.timeout(self._timeout):
                await self._publish_until_confirmed(exchange, routing_key, message)
        except TimeoutError:
            raise PublishTimeout(self._timeout) from None

    async def _publish_until_confirmed(
        self, exchange: str, routing_key: str, message: aio_pika.Message
    ) -> None:
        while True:
            channel = self._channel
            if channel is None:
                raise PublishError("publisher is not open")
            try:
                target = await self._exchange(channel, exchange)
                await target.publish(message, routing_key, mandatory=True)
                return
            except aio_pika.exceptions.PublishError:
                raise Unroutable(exchange, routing_key) from None
            except aio_pika.exceptions.DeliveryError as exc:
                raise PublishNacked(f"broker refused the publish: {exc}") from None
            except aiormq.exceptions.ChannelNotFoundEntity:
                # The broker closed the channel over a missing exchange (the robust channel
                # reopens itself): an error of ours, not a connection to wait for.
                self._exchanges.clear()
                raise PublishError(f"exchange {exchange!r} does not exist") from None
            except _CONNECTION_ERRORS:
                # The robust connection is reconnecting: wait for it, then publish again
                # (bounded by the caller's timeout). Pause first: just after a connection
                # drops, its channel already refuses publishes while the connection still
                # says it is ready, and retrying at once would spin without ever yielding to
                # the event loop, which would then never notice the drop nor fire the timeout.
                self._exchanges.clear()
                await asyncio.sleep(RETRY_PAUSE)
                await self._connection.ready()
                await channel.ready()

    async def _exchange(self, channel: AbstractRobustChannel, name: str) -> AbstractExchange:
        exchange = self._exchanges.get(name)
        if exchange is None:
            if name == "":
                exchange = channel.default_exchange
            else:
                exchange = await channel.get_exchange(name, ensure=False)
            self._exchanges[name] = exchange
        return exchange
