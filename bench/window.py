"""Running many calls either with a bounded number in flight (so that publishes pipeline:
the broker confirms a window of them at once) or at a steady pace (an open workload)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Call = Callable[[], Awaitable[object]]


class Outcome:
    """How a run of calls went: wall-clock start and end, successes and failures."""

    def __init__(self) -> None:
        self.started = time.time()
        self.finished = self.started
        self.succeeded = 0
        self.failures: list[BaseException] = []
        self._pending: set[asyncio.Future[object]] = set()

    @property
    def rate(self) -> float:
        """Successful calls per second over the run."""
        return self.succeeded / max(self.finished - self.started, 1e-9)

    def launch(self, call: Call, on_settled: Callable[[], None] | None = None) -> None:
        """Start `call()` as a task and count how it ends."""
        task = asyncio.ensure_future(_awaited(call()))
        self._pending.add(task)

        def settled(done: asyncio.Future[object]) -> None:
            self._pending.discard(done)
            error = done.exception()
            if error is None:
                self.succeeded += 1
            else:
                self.failures.append(error)
            if on_settled is not None:
                on_settled()

        task.add_done_callback(settled)

    async def finish(self) -> Outcome:
        """Wait for every call still in flight."""
        if self._pending:
            await asyncio.wait(set(self._pending))
        self.finished = time.time()
        return self


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable


async def in_window(call: Call, count: int, window: int) -> Outcome:
    """Await `call()` `count` times with at most `window` in flight."""
    slots = asyncio.Semaphore(window)
    outcome = Outcome()
    for _ in range(count):
        await slots.acquire()
        outcome.launch(call, slots.release)
    return await outcome.finish()


async def paced(call: Call, count: int, rate: float) -> Outcome:
    """Start `call()` `count` times at `rate` per second, evenly spread, whatever the earlier
    ones are doing: latency is then not hidden by the caller slowing down."""
    outcome = Outcome()
    begun = time.monotonic()
    for index in range(count):
        delay = begun + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        outcome.launch(call)
    return await outcome.finish()
