"""The event loop every bench process runs on: uvloop where it is installed, as Leveret's
CLI does for its workers and gateway (leveret/cli/options.py), so that the ceiling, the bare
endpoint, the producer and the load generator are not handicapped against them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from importlib import metadata
from typing import Any, TypeVar

T = TypeVar("T")


def _factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a fresh loop."""
    with asyncio.Runner(loop_factory=_factory()) as runner:
        return runner.run(coro)


def name() -> str:
    """Which loop `run` uses, with its version."""
    if _factory() is None:
        return "asyncio"
    return f"uvloop {metadata.version('uvloop')}"
