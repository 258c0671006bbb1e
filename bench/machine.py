"""What the benchmark ran on: CPU, cores, memory, Python, RabbitMQ and aio-pika versions."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import aio_pika

from bench import eventloop
from leveret.broker import connect


@dataclass(frozen=True)
class Machine:
    """The facts a reader needs to compare two runs."""

    cpu: str
    cores: int
    ram_gib: float
    python: str
    rabbitmq: str
    aio_pika: str
    event_loop: str
    """The loop of every process: the bench's and Leveret's CLI pick the same."""
    http_parser: str
    """What uvicorn parses HTTP with (httptools when installed, else h11)."""
    platform: str

    def as_dict(self) -> dict[str, Any]:
        """As plain data, for --json."""
        return asdict(self)


async def describe(amqp_url: str) -> Machine:
    """This machine, and the RabbitMQ at `amqp_url`."""
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        ram_gib=round(_ram_bytes() / 2**30, 1),
        python=platform.python_version(),
        rabbitmq=await _rabbitmq_version(amqp_url),
        aio_pika=aio_pika.__version__,
        event_loop=eventloop.name(),
        http_parser=_http_parser(),
        platform=platform.platform(terse=True),
    )


def _http_parser() -> str:
    for package in ("httptools", "h11"):
        try:
            return f"{package} {metadata.version(package)}"
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


async def _rabbitmq_version(amqp_url: str) -> str:
    connection = await connect(amqp_url, name="leveret-bench/describe")
    async with connection:
        transport = connection.transport
        if transport is None:
            return "unknown"
        properties = transport.connection.server_properties
        return f"{_text(properties.get('product', 'RabbitMQ'))} {_text(properties.get('version'))}"


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return "?" if value is None else str(value)
