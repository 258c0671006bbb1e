"""`leveret serve` (the gateway) and `leveret dev` (the gateway and demo workers together)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from leveret.cli.app import app
from leveret.cli.options import (
    AmqpUrl,
    LogLevel,
    Namespace,
    StoreUrl,
    configure_logging,
    run,
)
from leveret.cli.worker import leave_stuck_handler_threads
from leveret.jobs.settings import Settings
from leveret.workers import Worker

Http = Annotated[str | None, typer.Option("--http", help="host:port to listen on [LEVERET_HTTP].")]
KeysFile = Annotated[
    str | None,
    typer.Option("--api-keys-file", help="Hashed API keys; none: open [LEVERET_API_KEYS_FILE]."),
]


@app.command()
def serve(
    http: Http = None,
    amqp_url: AmqpUrl = None,
    store_url: StoreUrl = None,
    namespace: Namespace = None,
    api_keys_file: KeysFile = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Run the HTTP gateway until SIGTERM or SIGINT."""
    configure_logging(log_level)
    flags = {
        "http": http,
        "amqp_url": amqp_url,
        "store_url": store_url,
        "namespace": namespace,
        "api_keys_file": api_keys_file,
    }
    run(_serve(flags, log_level, beside=None))


@app.command()
def dev(
    http: Http = None,
    amqp_url: AmqpUrl = None,
    store_url: StoreUrl = None,
    namespace: Namespace = None,
    api_keys_file: KeysFile = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs the worker runs at once [LEVERET_CONCURRENCY].")
    ] = None,
    log_level: LogLevel = "INFO",
) -> None:
    """The gateway and a worker with the demo handlers, in one process, on the embedded
    store by default: everything needed to try Leveret."""
    configure_logging(log_level)
    from leveret.cli.demo import worker

    flags = {
        "http": http,
        "amqp_url": amqp_url,
        "store_url": store_url,
        "namespace": namespace,
        "api_keys_file": api_keys_file,
        "concurrency": concurrency,
    }
    run(_serve(flags, log_level, beside=worker))
    leave_stuck_handler_threads()


async def _serve(flags: dict[str, Any], log_level: str, *, beside: Worker | None) -> None:
    """Serve the gateway (with the worker `beside` it, if any) until SIGINT or SIGTERM, or
    until either of them stops. `flags` are the command's settings flags."""
    # The web stack loads only for these commands.
    from leveret.gateway.resources import open_gateway
    from leveret.gateway.server import bind_address, server

    settings = Settings.from_env(**flags)
    bind_address(settings)  # a malformed address is refused before connecting anywhere
    async with open_gateway(settings) as gateway:
        http_server = server(settings, gateway, log_level=log_level)

        def stop() -> None:
            http_server.should_exit = True
            if beside is not None:
                beside.stop()

        with _on_signals(stop):
            if beside is None:
                await http_server.serve()
                return
            work = asyncio.create_task(beside.run(settings))
            ready = asyncio.create_task(beside.wait_ready())
            await asyncio.wait({work, ready}, return_when=asyncio.FIRST_COMPLETED)
            if work.done():  # it could not start: say why, serve nothing
                ready.cancel()
                work.result()
                return
            serving = asyncio.create_task(http_server.serve())
            await asyncio.wait({work, serving}, return_when=asyncio.FIRST_COMPLETED)
            stop()  # whichever ended first, the other follows
            await asyncio.gather(work, serving)


@contextlib.contextmanager
def _on_signals(callback: Callable[[], None]) -> Iterator[None]:
    """Call `callback` on SIGINT and SIGTERM while the block runs."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, callback)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
