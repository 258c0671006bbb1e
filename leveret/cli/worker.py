"""`leveret worker`: run a Worker's handlers until told to stop."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
import threading
from typing import Annotated

import typer

from leveret.cli.app import app
from leveret.cli.options import (
    AmqpUrl,
    LogLevel,
    Namespace,
    QueueKind,
    Queues,
    StoreUrl,
    configure_logging,
    err,
    run,
)
from leveret.jobs.errors import ConfigurationError
from leveret.jobs.settings import Settings
from leveret.workers import Worker
from leveret.workers.run import JOB_THREAD_PREFIX


def leave_stuck_handler_threads() -> None:
    """Exit now if a plain-function handler thread is still running."""
    # A plain-function handler cannot be stopped, and Python waits for pool threads at exit:
    # one hung handler would keep a stopped worker alive forever. Its job has already been
    # handed back to the queue, so leave the thread behind.
    stuck = [t for t in threading.enumerate() if t.name.startswith(JOB_THREAD_PREFIX)]
    if any(t.is_alive() for t in stuck):
        err.print(f"warning: leaving {len(stuck)} unfinished handler thread(s) behind")
        logging.shutdown()
        os._exit(0)


async def leave_stuck_handler_tasks(grace: float = 5.0) -> None:
    """Exit now if a task is still running once the worker has stopped, `grace` seconds
    after being cancelled."""
    # A coroutine handler that swallows CancelledError outlives its time limit, and asyncio
    # cancels and then waits for every task left at exit: one such handler would keep a
    # stopped worker alive forever. Its job has already been recorded or handed back.
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not current]
    for task in left:
        task.cancel()
    if not left:
        return
    _, stuck = await asyncio.wait(left, timeout=grace)
    if stuck:
        err.print(f"warning: leaving {len(stuck)} task(s) that ignore cancellation behind")
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
    log_level: LogLevel = "INFO",
) -> None:
    """Run a worker until SIGTERM or SIGINT (running jobs finish or go back to the queue)."""
    configure_logging(log_level)
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
        app_worker = load_worker(target or "leveret.cli.demo:worker")
        await app_worker.run(settings, burst=burst, handle_signals=True)
        await leave_stuck_handler_tasks()

    run(main())
    leave_stuck_handler_threads()
