"""Running one handler call and turning whatever it does into an Outcome."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from leveret.jobs.errors import Reject, Retry
from leveret.workers.context import JobContext
from leveret.workers.outcomes import (
    AttemptFailed,
    ErrorCategory,
    Interrupted,
    InterruptReason,
    Outcome,
    Returned,
)
from leveret.workers.registry import Handler


class Interrupt:
    """Lets the worker stop a running handler and say why."""

    def __init__(self) -> None:
        self.reason: InterruptReason | None = None
        self._task: asyncio.Future[Any] | None = None

    def watch(self, task: asyncio.Future[Any] | None) -> None:
        """Cancel `task` when fired (None: the handler is no longer running)."""
        self._task = task

    def fire(self, reason: InterruptReason) -> None:
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
        error = f"timed out after {time_limit:g}s"
        return AttemptFailed(error, ErrorCategory.TIMEOUT, retryable=True)
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
    return Returned(result)


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


def _failure(exc: BaseException | None) -> AttemptFailed:
    if isinstance(exc, _Escaped):
        exc = exc.raised
    if isinstance(exc, Reject):
        return AttemptFailed(exc.reason, ErrorCategory.REJECTED, retryable=False, exception=exc)
    if isinstance(exc, Retry):
        return AttemptFailed(
            str(exc), ErrorCategory.RETRY, retryable=True, delay=exc.delay, exception=exc
        )
    # Anything else, SystemExit from a handler included, is an ordinary failed attempt:
    # a handler never takes the worker down.
    return AttemptFailed(_describe(exc), ErrorCategory.ERROR, retryable=True, exception=exc)
