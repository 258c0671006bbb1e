"""The `leveret` command line."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
import threading
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from jobs.errors import (
    BrokerUnavailable,
    ConfigurationError,
    ConsumerLost,
    LeveretError,
    StoreUnavailable,
)
from jobs.settings import QueueType, Settings
from workers import Worker
from workers.runtime import JOB_THREAD_PREFIX

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Leveret: background jobs on RabbitMQ."
)
topology_app = typer.Typer(no_args_is_help=True, help="Inspect and declare RabbitMQ topology.")
app.add_typer(topology_app, name="topology")
err = Console(stderr=True)

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3

AmqpUrl = Annotated[str | None, typer.Option("--amqp-url", help="RabbitMQ URL [LEVERET_AMQP_URL].")]
StoreUrl = Annotated[
    str | None, typer.Option("--store-url", help="Job store URL [LEVERET_STORE_URL].")
]
Namespace = Annotated[
    str | None,
    typer.Option("--namespace", help="Prefix of exchanges and queues [LEVERET_NAMESPACE]."),
]
Queues = Annotated[
    str | None, typer.Option("--queues", "-q", help="Comma-separated queues [LEVERET_QUEUES].")
]
QueueKind = Annotated[
    QueueType | None, typer.Option("--queue-type", help="classic or quorum [LEVERET_QUEUE_TYPE].")
]


def _run(coro: Any) -> None:
    """Run `coro`; a Leveret error is one line on stderr and a trustworthy exit code."""
    try:
        asyncio.run(coro)
    except (BrokerUnavailable, StoreUnavailable, ConsumerLost) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    except LeveretError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from None


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiormq logs every failed connect at ERROR and aio-pika every reconnect at INFO; Leveret
    # says the same once, in its own words (one line at start-up, a warning on reconnect).
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)


def _leave_stuck_handler_threads() -> None:
    # A plain-function handler cannot be stopped, and Python waits for pool threads at exit:
    # one hung handler would keep a stopped worker alive forever. Its job has already been
    # handed back to the queue, so leave the thread behind.
    stuck = [t for t in threading.enumerate() if t.name.startswith(JOB_THREAD_PREFIX)]
    if any(t.is_alive() for t in stuck):
        err.print(f"warning: leaving {len(stuck)} unfinished handler thread(s) behind")
        logging.shutdown()
        os._exit(0)


def load_worker(target: str) -> Worker:
    """The Worker at `module:attribute` (attribute default `worker`)."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from None
    found = getattr(module, attribute or "worker", None)
    if not isinstance(found, Worker):
        raise ConfigurationError(f"{target!r} is not a leveret Worker")
    return found


@app.command()
def worker(
    target: Annotated[
        str | None, typer.Argument(help="module:attribute of a Worker; default: the demo handlers.")
    ] = None,
    amqp_url: AmqpUrl = None,
    store_url: StoreUrl = None,
    namespace: Namespace = None,
    queues: Queues = None,
    queue_type: QueueKind = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once [LEVERET_CONCURRENCY].")
    ] = None,
    prefetch: Annotated[
        int | None, typer.Option(help="Unacked messages held [LEVERET_PREFETCH].")
    ] = None,
    shutdown_timeout: Annotated[
        str | None, typer.Option(help="Grace period at shutdown [LEVERET_SHUTDOWN_TIMEOUT].")
    ] = None,
    publish_timeout: Annotated[
        str | None, typer.Option(help="Wait for a publish confirm [LEVERET_PUBLISH_TIMEOUT].")
    ] = None,
    default_timeout: Annotated[
        str | None, typer.Option(help="A job's time limit by default [LEVERET_DEFAULT_TIMEOUT].")
    ] = None,
    consumer_timeout: Annotated[
        str | None, typer.Option(help="The broker's consumer_timeout [LEVERET_CONSUMER_TIMEOUT].")
    ] = None,
    delivery_limit: Annotated[
        int | None, typer.Option(help="Quorum queues' delivery limit [LEVERET_DELIVERY_LIMIT].")
    ] = None,
    burst: Annotated[bool, typer.Option(help="Exit once nothing is left to do.")] = False,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Run a worker until SIGTERM or SIGINT (running jobs finish or go back to the queue)."""
    _configure_logging(log_level)
    sys.path.insert(0, ".")

    async def main() -> None:
        settings = Settings.from_env(
            amqp_url=amqp_url,
            store_url=store_url,
            namespace=namespace,
            queues=queues,
            queue_type=queue_type,
            concurrency=concurrency,
            prefetch=prefetch,
            shutdown_timeout=shutdown_timeout,
            publish_timeout=publish_timeout,
            default_timeout=default_timeout,
            consumer_timeout=consumer_timeout,
            delivery_limit=delivery_limit,
        )
        app_worker = load_worker(target or "leveret.demo:worker")
        await app_worker.run(settings, burst=burst, handle_signals=True)

    _run(main())
    _leave_stuck_handler_threads()


@topology_app.command("show")
def topology_show(
    namespace: Namespace = None, queues: Queues = None, queue_type: QueueKind = None
) -> None:
    """Print the exchanges, queues and bindings Leveret declares (no broker needed)."""
    from topology import Names, QueueOptions, full_topology

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
    from broker import BrokerSession

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

    _run(main())


def main() -> None:
    """Entry point of the `leveret` console script."""
    app()
