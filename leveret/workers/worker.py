"""`Worker`: the handlers of an application, and running them."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from leveret.broker import BrokerSession
from leveret.jobs.backoff import Backoff
from leveret.jobs.settings import Settings
from leveret.jobs.store import store_from_url
from leveret.workers.middleware import Middleware, Stack
from leveret.workers.registry import HandlerFn, Registry
from leveret.workers.runtime import Runtime

log = logging.getLogger(__name__)

F = TypeVar("F", bound=HandlerFn)


class Worker:
    """An application's handlers, and the middleware around them. Creating one does no I/O;
    `run` connects and consumes.

    worker = Worker(middleware=[Timing()])

    @worker.handler("email", timeout="30s", max_attempts=5)
    async def send_email(ctx: JobContext, payload: dict) -> dict: ...
    """

    def __init__(
        self, name: str = "leveret-worker", *, middleware: Sequence[Middleware] = ()
    ) -> None:
        self.name = name
        self.registry = Registry()
        self.middleware = list(middleware)
        self._runtime: Runtime | None = None
        self._stop: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None

    def handler(
        self,
        name: str | None = None,
        *,
        queue: str | None = None,
        timeout: str | float | None = None,
        max_attempts: int | None = None,
        backoff: Backoff | None = None,
    ) -> Callable[[F], F]:
        """Register the decorated function `fn(ctx, payload)` for job type `name`."""

        def register(fn: F) -> F:
            self.registry.add(
                fn, name, queue=queue, timeout=timeout, max_attempts=max_attempts, backoff=backoff
            )
            return fn

        return register

    async def run(
        self,
        settings: Settings | None = None,
        *,
        burst: bool = False,
        handle_signals: bool = False,
    ) -> None:
        """Consume until `stop()` (or SIGTERM/SIGINT with `handle_signals`); with `burst`,
        return as soon as there is nothing left to do (drain mode, for tests and batch runs).
        Either way running jobs get `settings.shutdown_timeout` seconds to finish, then are
        handed back to the queue. Raises ConsumerLost when a consumer is gone for good."""
        settings = settings or Settings.from_env()
        store = store_from_url(settings.store_url)
        await store.open()
        self._stop = asyncio.Event()
        ready = self._ready_event()
        try:
            stack = Stack(self.middleware)
            async with BrokerSession.open(
                settings, name=self.name, hooks=stack.publish_hooks
            ) as session:
                runtime = Runtime(self.registry, settings, store, session, stack)
                self._runtime = runtime
                await runtime.start()
                ready.set()
                if handle_signals:
                    _on_signals(self.stop)
                try:
                    await _first(
                        self._stop.wait(),
                        runtime.watch_consumers(),
                        runtime.drained() if burst else None,
                    )
                finally:
                    if handle_signals:
                        _on_signals(None)
                    await runtime.stop(settings.shutdown_timeout)
        finally:
            self._runtime = self._ready = None
            await store.close()

    async def wait_ready(self) -> None:
        """Return once `run` consumes its queues (for tests and embedding)."""
        await self._ready_event().wait()

    def _ready_event(self) -> asyncio.Event:
        # Made per run (and by whichever of run/wait_ready comes first), so that a Worker
        # object can be run again on another event loop.
        if self._ready is None:
            self._ready = asyncio.Event()
        return self._ready

    @property
    def id(self) -> str | None:
        """The running worker's id (as recorded on the jobs it runs), or None."""
        return self._runtime.id if self._runtime is not None else None

    def stop(self) -> None:
        """Ask a running `run` to stop gracefully."""
        if self._stop is not None:
            self._stop.set()

    def cancel_job(self, job_id: str) -> bool:
        """Stop the handler of `job_id` if it runs in this process."""
        return self._runtime is not None and self._runtime.cancel_job(job_id)


async def _first(*waits: Coroutine[Any, Any, object] | None) -> None:
    """Wait until the first of `waits` returns, cancel the others; its error is raised."""
    tasks = [asyncio.ensure_future(w) for w in waits if w is not None]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()


def _on_signals(callback: Callable[[], None] | None) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        if callback is None:
            loop.remove_signal_handler(sig)
        else:
            loop.add_signal_handler(sig, callback)
