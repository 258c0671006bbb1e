"""The bare endpoint: a Litestar app whose one POST only publishes a no-op job's message
with a confirm (mandatory, unroutable = error) and answers 201. No store, no validation
beyond the body's shape: the reference for the gateway's submit rate.

    LEVERET_AMQP_URL=... LEVERET_NAMESPACE=... python -m bench.bare HOST:PORT

Served by uvicorn as the gateway is (gateway/server.py's Server): no access log, lifespan on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import msgspec
import uvicorn
from aio_pika.abc import AbstractExchange
from litestar import Litestar, get, post
from litestar.datastructures import State

from bench import eventloop
from bench.message import bare_message
from leveret.gateway.server import Server
from leveret.jobs import DEFAULT_QUEUE
from leveret.topology import Names

PUBLISH_TIMEOUT = 10.0


class BareSubmit(msgspec.Struct):
    """The body the bare endpoint takes: the same JSON the load generator sends the gateway."""

    type: str
    payload: Any = None


def create_bare_app(amqp_url: str, names: Names) -> Litestar:
    """The bare app, publishing to `names`' jobs exchange (declared beforehand)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        connection = await aio_pika.connect_robust(amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            app.state.exchange = await channel.get_exchange(names.jobs_exchange, ensure=False)
            yield

    @post("/jobs", status_code=201)
    async def publish(data: BareSubmit, state: State) -> dict[str, str | None]:
        """Publish one message and answer once the broker confirmed it."""
        exchange: AbstractExchange = state.exchange
        message = bare_message()
        async with asyncio.timeout(PUBLISH_TIMEOUT):
            await exchange.publish(message, DEFAULT_QUEUE, mandatory=True)
        return {"id": message.message_id}

    @get("/ready")
    async def ready() -> dict[str, str]:
        """Serving."""
        return {"status": "ready"}

    return Litestar(route_handlers=[publish, ready], lifespan=[lifespan], debug=False)


async def serve(amqp_url: str, namespace: str, address: str) -> None:
    """Serve the bare app on `address` (host:port) until SIGTERM or SIGINT, then return
    (so that a profiler around the process gets to write its stats)."""
    host, _, port = address.rpartition(":")
    config = uvicorn.Config(
        create_bare_app(amqp_url, Names(namespace)),
        host=host,
        port=int(port),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = Server(config)  # the gateway's: uvicorn minus its signal handling

    def stop() -> None:
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    await server.serve()


if __name__ == "__main__":
    # Through the imported module, not this __main__ copy: Litestar resolves the handler's
    # annotations in sys.modules[its __module__], which under `-m cProfile` is not this one.
    from bench import bare

    # Settings come from the environment (LEVERET_AMQP_URL would show its password in `ps`).
    eventloop.run(
        bare.serve(os.environ["LEVERET_AMQP_URL"], os.environ["LEVERET_NAMESPACE"], sys.argv[1])
    )
