"""Running one handler call and turning whatever it does into an Outcome."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from leveret.jobs.errors import Reject, Retry
from leveret.workers.context import JobContext
from leveret.workers.registry import Handler

log = logging.getLogger(__name__)


MAX_ERROR = 4096  # characters of an error message kept


@dataclass(frozen=True)
class Completed:
    """The handler returned `result`."""

    result: Any


@dataclass(frozen=True)
class Failed:
    """The attempt failed; `retryable` says whether another attempt may follow."""

    error: str
    category: str  # error, timeout, retry, rejected, no_handler, lost, unserialisable
    retryable: bool
    delay: float | None = None  # set by Retry(delay=…); None: the job's backoff decides

    def __post_init__(self) -> None:
        # A handler's 1 MB exception message would otherwise be a 1 MB log line and DLQ
        # header; the job keeps as much of it as its last_error holds.
        if len(self.error) > MAX_ERROR:
            object.__setattr__(self, "error", self.error[:MAX_ERROR])


@dataclass(frozen=True)
class Interrupted:
    """The worker stopped the handler: at shutdown (hand the job back) or on cancel."""

    reason: str  # "shutdown" or "cancelled"


Outcome = Completed | Failed | Interrupted


class Interrupt:
    """Lets the worker stop a running handler and say why."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._task: asyncio.Future[Any] | None = None

    def watch(self, task: asyncio.Future[Any] | None) -> None:
        """Cancel `task` when fired (None: the handler is no longer running)."""
        self._task = task

    def fire(self, reason: str) -> None:
        """Stop the handler (if it is running) for `reason`."""
        if self.reason is None:
            self.reason = reason
            if self._task is not None:
                self._task.cancel()


async def execute(
    handler: Handler,
    ctx: JobContext,
    payload: Any,
    *,
    time_limit: float,
    executor: Executor,
    interrupt: Interrupt,
) -> Outcome:
    """Run `handler` on one job with a time limit; never raises for the handler's sake."""
    if interrupt.reason is not None:
        return Interrupted(interrupt.reason)
    if handler.is_async:
        task: asyncio.Future[Any] = asyncio.ensure_future(_contained(handler.fn(ctx, payload)))
    else:
        # Plain functions run in the pool; copy_context keeps contextvars (tracing) intact.
        call = functools.partial(contextvars.copy_context().run, _call, handler.fn, ctx, payload)
        task = asyncio.get_running_loop().run_in_executor(executor, call)
    interrupt.watch(task)
    try:
        result = await asyncio.wait_for(asyncio.shield(task), time_limit)
    except TimeoutError:
        if task.done() and not task.cancelled() and isinstance(task.exception(), TimeoutError):
            return _failure(task.exception())  # the handler's own TimeoutError
        task.cancel()  # a thread cannot be stopped: its result will be dropped
        return Failed(f"timed out after {time_limit:g}s", "timeout", retryable=True)
    except asyncio.CancelledError:
        task.cancel()
        if interrupt.reason is None:
            raise  # the worker's own task was cancelled: not the handler's doing
        return Interrupted(interrupt.reason)
    except BaseException as exc:  # the handler's exception, recorded on the job
        if interrupt.reason is not None:
            return Interrupted(interrupt.reason)
        return _failure(exc)
    finally:
        interrupt.watch(None)
    return Completed(result)


class _Escaped(Exception):
    """Carries a BaseException a handler raised that would reach beyond its job: raised from
    a task, SystemExit and KeyboardInterrupt stop the event loop, and a CancelledError reads
    as the worker's own task being cancelled."""

    def __init__(self, raised: BaseException) -> None:
        super().__init__(type(raised).__name__)
        self.raised = raised


_ESCAPING = (SystemExit, KeyboardInterrupt, asyncio.CancelledError)


async def _contained(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except _ESCAPING as exc:
        task = asyncio.current_task()
        if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
            raise  # stopped from outside: its time limit, a cancel, the worker's shutdown
        raise _Escaped(exc) from exc


def _call(fn: Callable[..., Any], ctx: JobContext, payload: Any) -> Any:
    try:
        return fn(ctx, payload)
    except _ESCAPING as exc:
        raise _Escaped(exc) from exc


def _describe(exc: BaseException | None) -> str:
    """`Type: message` for an exception, even one whose __str__ raises."""
    try:
        text = str(exc)
    except Exception:
        text = "<exception str() failed>"  # what the traceback module prints
    return f"{type(exc).__name__}: {text}"


def _failure(exc: BaseException | None) -> Failed:
    if isinstance(exc, _Escaped):
        exc = exc.raised
    if isinstance(exc, Reject):
        return Failed(exc.reason, "rejected", retryable=False)
    if isinstance(exc, Retry):
        return Failed(str(exc), "retry", retryable=True, delay=exc.delay)
    # Anything else, SystemExit from a handler included, is an ordinary failed attempt:
    # a handler never takes the worker down.
    return Failed(_describe(exc), "error", retryable=True)
