"""A raw aio-pika consumer process for the ceiling: prefetch N, ack each message, no store.

    LEVERET_AMQP_URL=... python -m bench.drain QUEUE PREFETCH OUT

Prints `ready` once consuming, then `acked <count>` as the count grows; on SIGTERM writes
{"acked", "last_ack", "latencies_ms"} as msgpack to OUT and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from array import array
from pathlib import Path

import aio_pika
import msgspec
from aio_pika.abc import AbstractIncomingMessage

from bench import eventloop
from bench.message import stamped_at

PROGRESS_INTERVAL = 0.05


class Tally(msgspec.Struct):
    """What one raw consumer saw."""

    acked: int = 0
    last_ack: float = 0.0
    latencies_ms: list[float] = msgspec.field(default_factory=list)


async def drain(url: str, queue_name: str, prefetch: int) -> Tally:
    """Consume `queue_name` until SIGTERM; what was acked."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    latencies = array("d")
    tally = Tally()

    async def on_message(message: AbstractIncomingMessage) -> None:
        await message.ack()
        now = time.time()
        latencies.append((now - stamped_at(message.body)) * 1000)
        tally.last_ack = now

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(queue_name, ensure=False)
        await queue.consume(on_message, no_ack=False)
        print("ready", flush=True)
        shown = 0
        while not stop.is_set():
            if len(latencies) != shown:
                shown = len(latencies)
                print(f"acked {shown}", flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PROGRESS_INTERVAL)
    tally.acked = len(latencies)
    tally.latencies_ms = latencies.tolist()
    return tally


if __name__ == "__main__":
    url = os.environ["LEVERET_AMQP_URL"]  # not an argument: `ps` would show its password
    queue_name, prefetch, out = sys.argv[1:4]
    Path(out).write_bytes(
        msgspec.msgpack.encode(eventloop.run(drain(url, queue_name, int(prefetch))))
    )
