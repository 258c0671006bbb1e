"""`leveret topology show|declare`: what Leveret declares on RabbitMQ."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from leveret.cli.app import topology_app
from leveret.cli.options import AmqpUrl, Namespace, QueueKind, Queues, run
from leveret.jobs.settings import Settings


@topology_app.command("show")
def topology_show(
    namespace: Namespace = None, queues: Queues = None, queue_type: QueueKind = None
) -> None:
    """Print the exchanges, queues and bindings Leveret declares (no broker needed)."""
    from leveret.topology import Names, QueueOptions, full_topology

    settings = Settings.from_env(namespace=namespace, queues=queues, queue_type=queue_type)
    spec = full_topology(
        Names(settings.namespace), settings.queues, QueueOptions(queue_type=settings.queue_type)
    )
    table = Table("kind", "name", "details")
    for exchange in spec.exchanges:
        table.add_row("exchange", exchange.name, exchange.kind.value)
    for queue in spec.queues:
        table.add_row(
            "queue", queue.name, ", ".join(f"{k}={v}" for k, v in queue.arguments.items())
        )
    for binding in spec.bindings:
        detail = f"key={binding.routing_key!r}" + (
            f" {binding.arguments}" if binding.arguments else ""
        )
        table.add_row("binding", f"{binding.exchange} → {binding.queue}", detail)
    Console().print(table)


@topology_app.command("declare")
def topology_declare(
    amqp_url: AmqpUrl = None,
    namespace: Namespace = None,
    queues: Queues = None,
    queue_type: QueueKind = None,
) -> None:
    """Declare the topology on RabbitMQ (idempotent; fails naming any mismatch)."""
    from leveret.broker import BrokerSession

    async def main() -> None:
        settings = Settings.from_env(
            amqp_url=amqp_url, namespace=namespace, queues=queues, queue_type=queue_type
        )
        async with BrokerSession.open(settings, name="leveret-cli") as session:
            for queue in settings.queues:
                await session.router.ensure_queue(queue)
        Console().print(
            f"declared namespace {settings.namespace!r}: queues {', '.join(settings.queues)}"
        )

    run(main())
