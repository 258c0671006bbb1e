"""Robust connections to RabbitMQ, with unreachable brokers reported in one clear line."""

from __future__ import annotations

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustConnection

from leveret.jobs.errors import BrokerUnavailable
from leveret.jobs.settings import mask_url

CONNECT_TIMEOUT = 10.0
# Seconds between reconnect attempts (aio-pika waits 5 by default): a short outage should
# cost a worker about a second of work, not five.
RECONNECT_INTERVAL = 1.0


async def connect(url: str, *, name: str) -> AbstractRobustConnection:
    """A robust connection named `name` (shown in RabbitMQ's connection list).

    Every process opens separate connections for publishing and consuming, so that a
    publisher blocked by a broker alarm cannot hold up acks.
    """
    try:
        return await aio_pika.connect_robust(
            url,
            timeout=CONNECT_TIMEOUT,
            reconnect_interval=RECONNECT_INTERVAL,
            client_properties={"connection_name": name},
        )
    except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
        raise BrokerUnavailable(mask_url(url), str(exc) or type(exc).__name__) from None
