"""Running one attempt: the handler with its context, time limit and middleware, in a
worker that may interrupt it (cancel, shutdown)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from leveret.broker.events import EventPublisher
from leveret.jobs.model import Job
from leveret.jobs.rules import DEFAULT_MAX_ATTEMPTS
from leveret.jobs.settings import Settings
from leveret.jobs.store.protocol import JobStore
from leveret.workers.context import make_context
from leveret.workers.execution import Interrupt, execute
from leveret.workers.middleware import Stack
from leveret.workers.outcomes import (
    AttemptFailed,
    ErrorCategory,
    Interrupted,
    InterruptReason,
    Outcome,
)
from leveret.workers.registry import Handler

JOB_THREAD_PREFIX = "leveret-job"  # names the threads plain-function handlers run in


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt came to, with the progress and checkpoint values its handler
    reported (written with the outcome)."""

    outcome: Outcome
    reported: dict[str, Any]


class Runner:
    """Runs attempts for one worker process, and can interrupt those still running."""

    def __init__(
        self, settings: Settings, store: JobStore, events: EventPublisher, stack: Stack
    ) -> None:
        self._settings = settings
        self._store = store
        self._events = events
        self._stack = stack
        self._executor = _pool(settings.concurrency)
        self._running: dict[str, Interrupt] = {}

    @property
    def running(self) -> int:
        """How many attempts are running now."""
        return len(self._running)

    async def run(self, job: Job, handler: Handler | None) -> Attempt:
        """Run attempt `job.attempt` of `job`; never raises for the handler's sake."""
        if handler is None:
            error = f"no handler for job type {job.type!r}"
            return Attempt(AttemptFailed(error, ErrorCategory.NO_HANDLER, retryable=False), {})
        if job.attempt > (job.max_attempts or DEFAULT_MAX_ATTEMPTS):
            # Taken over after its workers died once too often.
            error = job.last_error or "worker lost"
            return Attempt(AttemptFailed(error, ErrorCategory.LOST, retryable=True), {})
        limit = job.timeout or handler.timeout or self._settings.default_timeout
        time_limit = min(limit, self._settings.consumer_timeout)
        ctx, reporter = make_context(self._store, job, self._events)
        interrupt = Interrupt()
        self._running[job.id] = interrupt
        executor = self._executor

        async def call_handler() -> Outcome:
            return await execute(
                handler,
                ctx,
                job.payload,
                time_limit=time_limit,
                executor=executor,
                interrupt=interrupt,
            )

        try:
            if self._stack.wraps:
                outcome = await self._stack.around(ctx, call_handler)
            else:
                outcome = await call_handler()
        finally:
            # pop, not del: after a reconnect the same job can briefly run twice here.
            self._running.pop(job.id, None)
            await reporter.close()
        if not handler.is_async and _abandoned(outcome):
            self._renew_executor()
        return Attempt(outcome, reporter.latest)

    def interrupt(self, job_id: str, reason: InterruptReason) -> bool:
        """Stop the handler running `job_id` here, if any; whether there was one."""
        interrupt = self._running.get(job_id)
        if interrupt is None:
            return False
        interrupt.fire(reason)
        return True

    def interrupt_all(self, reason: InterruptReason) -> None:
        """Stop every handler running here."""
        for interrupt in list(self._running.values()):
            interrupt.fire(reason)

    def close(self) -> None:
        """Drop the thread pool; threads still running a plain function end with it."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _renew_executor(self) -> None:
        # A plain function left running past its time limit or cancel cannot be stopped, and
        # keeps its thread in the pool: once `concurrency` of them hang, every later plain
        # function would wait behind them for ever. Later calls get a fresh pool; the old
        # one's threads end with their calls.
        self._executor.shutdown(wait=False)
        self._executor = _pool(self._settings.concurrency)


def _pool(size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(size, thread_name_prefix=JOB_THREAD_PREFIX)


def _abandoned(outcome: Outcome) -> bool:
    """Whether the handler was left running when the attempt ended (timed out or stopped)."""
    if isinstance(outcome, AttemptFailed):
        return outcome.category is ErrorCategory.TIMEOUT
    return isinstance(outcome, Interrupted)
