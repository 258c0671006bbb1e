"""The real RabbitMQ the integration and end-to-end tests use, and cleaning up after them."""

from __future__ import annotations

import asyncio
import os

import aio_pika
import pytest

from leveret.topology import DELAY_TIERS_MS, Names

AMQP_URL = os.environ.get("LEVERET_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _broker_reachable() -> str | None:
    async def probe() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def require_rabbitmq() -> None:
    """Fail (under CI) or skip loudly (elsewhere) when RabbitMQ cannot be reached."""
    problem = _broker_reachable()
    if problem is None:
        return
    message = (
        f"RabbitMQ is not reachable at {AMQP_URL} ({problem}); "
        "start it with `rabbitmq-server -detached`"
    )
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(f"SKIPPING INTEGRATION TESTS: {message}")


TEST_QUEUES = ("default", "alpha", "beta")


async def delete_namespace(names: Names, queues: tuple[str, ...]) -> None:
    """Delete every queue and exchange a test could have declared under `names`."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        doomed = [names.delay_queue(ms) for ms in DELAY_TIERS_MS]
        doomed += [names.work_queue(q) for q in queues]
        doomed += [names.dead_letter_queue(q) for q in queues]
        for queue in doomed:
            await channel.queue_delete(queue)
        for exchange in (
            names.jobs_exchange,
            names.delay_exchange,
            names.dead_letter_exchange,
            names.events_exchange,
            names.control_exchange,
        ):
            await channel.exchange_delete(exchange)
