"""A fresh namespace and an empty SQLite store for one scenario, removed when it ends."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

import aio_pika

from bench.plan import Plan
from leveret.jobs import DEFAULT_QUEUE, Settings
from leveret.topology import Names, QueueOptions, full_topology

CEILING_QUEUE = "ceiling"
"""The Leveret-style queue name the raw ceiling publishes to (a plain durable queue)."""


class Sandbox:
    """`bench<hex>` on RabbitMQ and `<tmp>/leveret.db`, for one scenario.

    On exit every queue and exchange Leveret could have declared under the namespace (and the
    ceiling's queue) is deleted, and the temporary directory removed. Listener queues are
    exclusive: they go with the connections of the processes that made them.
    """

    def __init__(self, plan: Plan, scenario: str) -> None:
        self.plan = plan
        self.scenario = scenario
        self.names = Names(f"bench{uuid.uuid4().hex[:10]}")
        self.directory = Path(tempfile.mkdtemp(prefix=f"leveret-bench-{scenario}-"))
        self.settings = Settings(
            amqp_url=plan.amqp_url,
            store_url=f"sqlite:///{self.directory / 'leveret.db'}",
            namespace=self.names.namespace,
            concurrency=plan.worker_settings.concurrency,
            shutdown_timeout=5.0,
        )

    @property
    def queue(self) -> str:
        """The work queue every scenario's jobs go to."""
        return self.names.work_queue(DEFAULT_QUEUE)

    def environment(self) -> dict[str, str]:
        """LEVERET_* variables that point a child process at this sandbox."""
        return {
            "LEVERET_AMQP_URL": self.settings.amqp_url,
            "LEVERET_STORE_URL": self.settings.store_url,
            "LEVERET_NAMESPACE": self.settings.namespace,
            "LEVERET_CONCURRENCY": str(self.settings.concurrency),
            "LEVERET_SHUTDOWN_TIMEOUT": str(self.settings.shutdown_timeout),
        }

    def log(self, name: str) -> Path:
        """Where child process `name` writes its output."""
        return self.directory / f"{name}.log"

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await delete_namespace(self.plan.amqp_url, self.names)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


async def delete_namespace(amqp_url: str, names: Names) -> None:
    """Delete every queue and exchange under `names` (deleting a missing one is a no-op)."""
    spec = full_topology(names, (DEFAULT_QUEUE, CEILING_QUEUE), QueueOptions())
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in spec.queues:
            await channel.queue_delete(queue.name)
        for exchange in spec.exchanges:
            await channel.exchange_delete(exchange.name)
