"""The middleware seam: hooks around every job a worker handles.

A middleware subclasses `Middleware` and overrides the hooks it needs; the rest cost
nothing. For one delivery the hooks run in this order:

    on_publish   every message of a job this process sends (the submit, a retry, a hop
                 through the delay tiers, the copy in the DLQ …), before it goes out
    on_claim     the worker has claimed the job (it is `running`, attempt job.attempt)
    around_handler   wraps the handler's call; the first middleware given is the outermost
    on_settle    the outcome is decided, recorded and the delivery settled

A hook that raises is logged and the job carries on (a middleware never loses a job),
except `around_handler`, which is part of running the handler: what it raises fails the
attempt like a handler's exception would.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from leveret.broker import Publish
from leveret.jobs.model import Job
from leveret.workers.context import JobContext
from leveret.workers.decision import Decision
from leveret.workers.outcomes import AttemptFailed, ErrorCategory, Outcome

log = logging.getLogger(__name__)

CallNext = Callable[[], Awaitable[Outcome]]
"""Runs the rest of the chain (the next middleware, in the end the handler)."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """How one attempt ended: the job as claimed (its attempt is the one that ended), what
    the handler came to, what that meant, and the job as written afterwards (None when the
    store refused the write: the job was cancelled or taken over meanwhile, or the worker
    stopped before it could be written)."""

    job: Job
    outcome: Outcome
    decision: Decision
    stored: Job | None


class Middleware:
    """Base class of worker middleware; every hook does nothing unless overridden.

    class Timing(Middleware):
        async def around_handler(self, ctx, call_next):
            started = time.perf_counter()
            outcome = await call_next()
            log.info("%s took %.3fs", ctx.job.type, time.perf_counter() - started)
            return outcome

    worker = Worker(middleware=[Timing()])
    """

    async def on_publish(self, publish: Publish) -> None:
        """A job's message is about to be published; `publish.headers` may be changed."""

    async def on_claim(self, job: Job) -> None:
        """This worker claimed `job` and is about to run attempt `job.attempt`."""

    async def around_handler(self, ctx: JobContext, call_next: CallNext) -> Outcome:
        """Run the handler by awaiting `call_next()`; return its outcome (or another)."""
        return await call_next()

    async def on_settle(self, settlement: Settlement) -> None:
        """The attempt's outcome was decided, written and its delivery settled."""


class Stack:
    """A worker's middleware, each hook called only on those that override it. The hot
    path asks `claims`, `wraps` and `settles` first, so that a worker without middleware
    pays for none of it."""

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = tuple(middleware)
        self.publish_hooks = _overriding(self.middleware, "on_publish")
        self._claim = _overriding(self.middleware, "on_claim")
        self._around = _overriding(self.middleware, "around_handler")
        self._settle = _overriding(self.middleware, "on_settle")
        self.claims = bool(self._claim)
        self.wraps = bool(self._around)
        self.settles = bool(self._settle)

    async def claimed(self, job: Job) -> None:
        """Call every on_claim."""
        for m in self._claim:
            try:
                await m.on_claim(job)
            except Exception:  # the user's code: log it and run the job
                log.exception("middleware %r failed on_claim of job %s", m, job.id)

    async def around(self, ctx: JobContext, handler: CallNext) -> Outcome:
        """Run `handler` inside every around_handler, the first middleware outermost."""
        call = handler
        for m in reversed(self._around):
            call = _wrapped(m, ctx, call)
        try:
            return await call()
        except Exception as exc:
            log.exception("middleware around_handler failed on job %s", ctx.job.id)
            error = f"middleware failed: {type(exc).__name__}: {exc}"
            return AttemptFailed(error, ErrorCategory.MIDDLEWARE, retryable=True, exception=exc)

    async def settled(self, settlement: Settlement) -> None:
        """Call every on_settle."""
        for m in self._settle:
            try:
                await m.on_settle(settlement)
            except Exception:  # the user's code: the delivery is settled already
                log.exception("middleware %r failed on_settle of job %s", m, settlement.job.id)


def _wrapped(middleware: Middleware, ctx: JobContext, call_next: CallNext) -> CallNext:
    async def call() -> Outcome:
        return await middleware.around_handler(ctx, call_next)

    return call


def _overriding(middleware: tuple[Middleware, ...], hook: str) -> tuple[Middleware, ...]:
    default = getattr(Middleware, hook)
    return tuple(m for m in middleware if getattr(type(m), hook) is not default)
