"""Waiting on conditions with a bounded timeout: the tests' only way to wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL = 0.02


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool] = bool,
    *,
    timeout: float = 15.0,
    what: str = "condition",
) -> T:
    """Call `probe` until `accept` holds for its value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g}s; last value: {value!r}")
        await asyncio.sleep(POLL)


def eventually_sync(
    probe: Callable[[], T],
    accept: Callable[[T], bool] = bool,
    *,
    timeout: float = 15.0,
    what: str = "condition",
) -> T:
    """`eventually` for code without an event loop (starting a process, say)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g}s; last value: {value!r}")
        time.sleep(POLL)
