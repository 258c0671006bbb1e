"""Handlers that misbehave, for fault tests that run
`leveret worker tests.faults.bad_handlers:worker` as a process: handlers that hang, leak
exceptions of every kind, or return what cannot be stored; and two well-behaved ones, to show
that the worker goes on running other jobs."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from leveret.jobs.backoff import Backoff, BackoffStrategy
from leveret.workers import JobContext, Worker

worker = Worker("leveret-test-bad-handlers")

HANG_TIMEOUT = 0.5  # seconds a hanging handler is given: short, the test waits it out
HANG_ATTEMPTS = 2
# Retry at once: the policy is still applied (attempts counted, the job republished), and the
# test does not wait out a backoff.
NO_WAIT = Backoff(strategy=BackoffStrategy.CONSTANT, initial=0.0, jitter=False)
HUGE = 1 << 20  # characters in the message of the "huge" exception
BACKGROUND_FAILURE = "background task failed after its handler returned"


class Unprintable(Exception):
    """An exception whose __str__ itself raises."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ of Unprintable raised")


class Doom(BaseException):
    """A BaseException subclass that is not an Exception."""


# Leaked exceptions by name (the job's payload), each built afresh.
LEAKS: dict[str, Callable[[], BaseException]] = {
    "SystemExit": lambda: SystemExit(3),
    "KeyboardInterrupt": lambda: KeyboardInterrupt("interrupted by the handler"),
    "GeneratorExit": lambda: GeneratorExit("closed by the handler"),
    "CancelledError": lambda: asyncio.CancelledError("cancelled by the handler"),
    "Unprintable": Unprintable,
    "huge": lambda: RuntimeError("x" * HUGE),
    "Doom": lambda: Doom("a BaseException of the handler's own"),
}


class Opaque:
    """An object msgpack knows nothing about."""


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


# Results (or checkpoints) by name (the job's payload). "large" is only too large against the small
# LEVERET_MAX_RESULT the test gives the worker.
RESULTS: dict[str, Callable[[], Any]] = {
    "set": lambda: {3, 1, 2},
    "Opaque": Opaque,
    "circular": _circular,
    "bytes-keys": lambda: {b"k": 1},
    "tuple-keys": lambda: {(1, 2): "pair"},
    "huge-int": lambda: 2**70,
    "large": lambda: "x" * 4096,
}

# Awaited by the stubborn handler. Module-level, as what real code waits on (a socket, a
# queue, a lock) is referenced from elsewhere: a task waiting on an event only it knew of
# could be garbage-collected, which would hide the fault.
_NEVER = asyncio.Event()

# Keeps a background task referenced until it is done, as any fire-and-forget helper must.
_background: set[asyncio.Task[None]] = set()


@worker.handler("echo-async")
async def echo_async(ctx: JobContext, payload: Any) -> Any:
    """Return the payload: a coroutine handler that behaves."""
    return payload


@worker.handler("echo-sync")
def echo_sync(ctx: JobContext, payload: Any) -> Any:
    """Return the payload: a plain-function handler that behaves (runs in the thread pool)."""
    return payload


@worker.handler("nap")
async def nap(ctx: JobContext, payload: float) -> float:
    """Sleep `payload` seconds without reporting progress, so that the outcome is the only
    store write of its attempt; return the payload."""
    await asyncio.sleep(payload)
    return payload


@worker.handler("hang-async", timeout=HANG_TIMEOUT, max_attempts=HANG_ATTEMPTS, backoff=NO_WAIT)
async def hang_async(ctx: JobContext, payload: Any) -> None:
    """Await an event nobody ever sets."""
    await asyncio.Event().wait()


@worker.handler("hang-stubborn", timeout=HANG_TIMEOUT, max_attempts=HANG_ATTEMPTS, backoff=NO_WAIT)
async def hang_stubborn(ctx: JobContext, payload: Any) -> None:
    """Await an event nobody sets, and swallow the cancellation meant to stop it."""
    while True:
        with contextlib.suppress(asyncio.CancelledError):
            await _NEVER.wait()


@worker.handler("hang-sync", timeout=HANG_TIMEOUT, max_attempts=HANG_ATTEMPTS, backoff=NO_WAIT)
def hang_sync(ctx: JobContext, payload: Any) -> None:
    """Block its thread for good: a plain function cannot be stopped from outside."""
    threading.Event().wait()


@worker.handler("leak-async", max_attempts=1)
async def leak_async(ctx: JobContext, payload: str) -> None:
    """Raise the exception named by the payload from a coroutine."""
    raise LEAKS[payload]()


@worker.handler("leak-sync", max_attempts=1)
def leak_sync(ctx: JobContext, payload: str) -> None:
    """Raise the exception named by the payload from a plain function."""
    raise LEAKS[payload]()


@worker.handler("leak-task")
async def leak_task(ctx: JobContext, payload: Any) -> str:
    """Start a task that fails once this handler has returned, and return at once."""
    task = asyncio.create_task(_fail_later())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return "returned"


async def _fail_later() -> None:
    for _ in range(10):  # a few loop turns: the handler has returned by then
        await asyncio.sleep(0)
    raise RuntimeError(BACKGROUND_FAILURE)


@worker.handler("result", max_attempts=1)
async def result(ctx: JobContext, payload: str) -> Any:
    """Return the value named by the payload."""
    return RESULTS[payload]()


@worker.handler("checkpoint", max_attempts=1)
async def checkpoint(ctx: JobContext, payload: str) -> str:
    """Save the value named by the payload as a checkpoint, then return."""
    ctx.save_checkpoint(RESULTS[payload]())
    return "returned"
