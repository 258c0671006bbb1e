"""What every `leveret` command shares: option types, exit codes, errors as one line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer
from rich.console import Console

from leveret.cli.exits import EXIT_UNAVAILABLE, EXIT_USAGE
from leveret.jobs.errors import BrokerUnavailable, ConsumerLost, LeveretError, StoreUnavailable
from leveret.jobs.settings import QueueType

err = Console(stderr=True)

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
LogLevel = Annotated[str, typer.Option(help="Logging level.")]


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro`; a Leveret error is one line on stderr and a trustworthy exit code."""
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(coro)
    except (BrokerUnavailable, StoreUnavailable, ConsumerLost) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    except LeveretError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it exists (not on Windows): the same asyncio, with the loop
    and its transports in C, which takes a good share of the CPU a worker or gateway spends
    per job."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def configure_logging(level: str) -> None:
    """Log to stderr at `level`, with the AMQP libraries' noise turned down."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiormq logs every failed connect at ERROR and aio-pika every reconnect at INFO; Leveret
    # says the same once, in its own words (one line at start-up, a warning on reconnect).
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
