"""Faults made on the broker itself with `rabbitmqctl`: a memory alarm, a queue-length policy,
and what the broker says about its queues and connections. Every change is undone on exit."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.conditions import eventually

COMMAND_TIMEOUT = 30.0
_FRACTION = re.compile(r"^\d+(\.\d+)?$")
_ABSOLUTE = re.compile(r'^\{absolute,\s*"?([^"}]+)"?\}$')


async def rabbitmqctl(*args: str) -> str:
    """Run `rabbitmqctl -q <args>` (without blocking the event loop); its output."""
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "-q",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {err.decode().strip()}")
    return out.decode().strip()


async def _listing(*args: str) -> list[dict[str, Any]]:
    rows = json.loads(await rabbitmqctl(*args, "--formatter", "json") or "[]")
    assert isinstance(rows, list)
    return rows


# --- memory alarm ------------------------------------------------------------------------


async def memory_alarm_on() -> bool:
    """Whether the broker has a memory alarm raised right now."""
    alarms = await rabbitmqctl("eval", "rabbit_alarm:get_alarms().")
    return "memory" in alarms


async def _watermark_arguments() -> tuple[str, ...]:
    """The arguments of `set_vm_memory_high_watermark` that set it back to its current value."""
    value = await rabbitmqctl("eval", "vm_memory_monitor:get_vm_memory_high_watermark().")
    if _FRACTION.match(value):
        return (value,)
    absolute = _ABSOLUTE.match(value)
    if absolute:
        return ("absolute", absolute.group(1).strip())
    # What cannot be restored must not be changed.
    raise RuntimeError(f"unexpected vm_memory_high_watermark {value!r}; not touching it")


@asynccontextmanager
async def memory_alarm() -> AsyncIterator[None]:
    """A memory alarm, raised for the block and always cleared after it: the broker blocks
    every connection that publishes (on any vhost, so keep the block short), as when it
    runs out of memory."""
    if await memory_alarm_on():
        configured = await rabbitmqctl(
            "eval", "application:get_env(rabbit, vm_memory_high_watermark)."
        )
        raise RuntimeError(
            "a memory alarm is already on (a run that crashed?); the configured watermark is "
            f"{configured}: restore it with `rabbitmqctl set_vm_memory_high_watermark <value>`"
        )
    original = await _watermark_arguments()
    try:
        # 0 is the documented way to raise the alarm at once, whatever the memory in use.
        await rabbitmqctl("set_vm_memory_high_watermark", "0")
        await eventually(memory_alarm_on, what="memory alarm raised")
        yield
    finally:

        async def restored() -> bool:
            # Tried again until it holds: a broker left blocked would fail every test after.
            try:
                await rabbitmqctl("set_vm_memory_high_watermark", *original)
                return not await memory_alarm_on()
            except (RuntimeError, TimeoutError):
                return False

        await eventually(restored, timeout=60, what="memory alarm cleared")
    assert await _watermark_arguments() == original


# --- queues ------------------------------------------------------------------------------


@asynccontextmanager
async def queue_policy(name: str, queue: str, definition: dict[str, Any]) -> AsyncIterator[None]:
    """An operator policy `name` with `definition` on the (existing) queue `queue` alone,
    applied for the block and cleared after it."""
    pattern = "^" + re.escape(queue) + "$"
    await rabbitmqctl("set_policy", "--apply-to", "queues", name, pattern, json.dumps(definition))
    try:
        await eventually(
            lambda: queue_info(queue),
            lambda q: q.get("policy") == name,
            what=f"policy {name} on {queue}",
        )
        yield
    finally:
        await rabbitmqctl("clear_policy", name)


async def queue_info(queue: str) -> dict[str, Any]:
    """What the broker says about `queue`: policy, messages ready and unacked, consumers
    (an empty dict when there is no such queue)."""
    rows = await _listing(
        "list_queues", "name", "policy", "messages_ready", "messages_unacknowledged", "consumers"
    )
    return next((row for row in rows if row.get("name") == queue), {})


async def queue_counts(queue: str) -> tuple[int, int]:
    """Messages of `queue` ready and unacknowledged, as the queue itself counts them."""
    info = await queue_info(queue)
    assert info, f"queue {queue} does not exist"
    return int(info["messages_ready"]), int(info["messages_unacknowledged"])


# --- connections -------------------------------------------------------------------------


async def connection_peer_ports() -> set[int]:
    """The client-side ports of every connection the broker has open."""
    return {int(row["peer_port"]) for row in await _listing("list_connections", "peer_port")}


async def received_bytes(peer_ports: set[int]) -> int:
    """Bytes the broker has read on the connections from `peer_ports`."""
    rows = await _listing("list_connections", "peer_port", "recv_oct")
    return sum(int(row["recv_oct"]) for row in rows if int(row["peer_port"]) in peer_ports)
