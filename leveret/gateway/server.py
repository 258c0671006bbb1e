"""Serving the app with uvicorn."""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn

from leveret.gateway.app import create_app
from leveret.gateway.resources import Gateway
from leveret.jobs.errors import ConfigurationError
from leveret.jobs.settings import Settings


def bind_address(settings: Settings) -> tuple[str, int]:
    """(host, port) of `settings.http` ("127.0.0.1:8080"); ConfigurationError if malformed."""
    host, sep, port = settings.http.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"LEVERET_HTTP {settings.http!r}: use host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


class Server(uvicorn.Server):
    """uvicorn's server, minus its signal handling: the caller owns SIGINT and SIGTERM, so
    that stopping also stops the workers running beside it (uvicorn would re-raise the
    signal once it has stopped, killing them mid-job)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def server(settings: Settings, gateway: Gateway, *, log_level: str = "info") -> Server:
    """A server for the app over an opened `gateway`; `await server.serve()` runs it until
    `server.should_exit = True`."""
    host, port = bind_address(settings)
    config = uvicorn.Config(
        create_app(settings, gateway=gateway),
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return Server(config)
