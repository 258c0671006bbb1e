"""`leveret serve` (the gateway) and `leveret dev` (the gateway and demo workers together)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from jobs.settings import Settings
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
    from gateway.resources import open_gateway  # the web stack loads only for these commands
    from gateway.server import server

    async def main() -> None:
        settings = _settings(
            http=http,
            amqp_url=amqp_url,
            store_url=store_url,
            namespace=namespace,
            api_keys_file=api_keys_file,
        )
        async with open_gateway(settings) as gateway:
            http_server = server(settings, gateway, log_level=log_level)
            with _on_signals(lambda: setattr(http_server, "should_exit", True)):
                await http_server.serve()

    run(main())


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
    from gateway.resources import open_gateway
    from gateway.server import server
    from leveret.demo import worker

    async def main() -> None:
        settings = _settings(
            http=http,
            amqp_url=amqp_url,
            store_url=store_url,
            namespace=namespace,
            api_keys_file=api_keys_file,
            concurrency=concurrency,
        )
        async with open_gateway(settings) as gateway:
            http_server = server(settings, gateway, log_level=log_level)

            def stop() -> None:
                http_server.should_exit = True
                worker.stop()

            with _on_signals(stop):
                work = asyncio.create_task(worker.run(settings))
                ready = asyncio.create_task(worker.wait_ready())
                await asyncio.wait({work, ready}, return_when=asyncio.FIRST_COMPLETED)
                if work.done():  # it could not start: say why, serve nothing
                    ready.cancel()
                    work.result()
                    return
                serving = asyncio.create_task(http_server.serve())
                await asyncio.wait({work, serving}, return_when=asyncio.FIRST_COMPLETED)
                stop()  # whichever ended first, the other follows
                await asyncio.gather(work, serving)

    run(main())
    leave_stuck_handler_threads()


def _settings(**flags: Any) -> Settings:
    """Settings from the environment and `flags`, with the listening address checked before
    anything connects anywhere."""
    from gateway.server import bind_address

    settings = Settings.from_env(**flags)
    bind_address(settings)
    return settings


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
