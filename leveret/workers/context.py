"""What a handler gets besides its payload: the job, and ways to report progress."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from typing import Any

import msgspec

from leveret.broker.events import EventPublisher
from leveret.jobs.errors import StoreError
from leveret.jobs.events import EventName
from leveret.jobs.model import Job
from leveret.jobs.states import JobState
from leveret.jobs.store.protocol import JobStore

log = logging.getLogger(__name__)


class _Reporter:
    """Writes progress and checkpoints in the background, and announces progress. It
    coalesces: while one write is in flight, newer values replace older ones, and only the
    latest is written next."""

    def __init__(
        self, store: JobStore, job: Job, events: EventPublisher, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._store = store
        self._job = job
        self._events = events
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._pending: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self.latest: dict[str, Any] = {}  # everything reported this attempt

    def report(self, changes: dict[str, Any]) -> None:
        if threading.get_ident() == self._loop_thread:
            self._merge(changes)
        else:
            self._loop.call_soon_threadsafe(self._merge, changes)

    def _merge(self, changes: dict[str, Any]) -> None:
        self.latest.update(changes)
        self._pending.update(changes)
        if self._task is None:
            self._task = self._loop.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                changes, self._pending = self._pending, {}
                try:
                    written = await self._store.update(
                        self._job.id, changes, state=JobState.RUNNING, attempt=self._job.attempt
                    )
                    if written and "progress" in changes:
                        progressed = msgspec.structs.replace(self._job, **self.latest)
                        self._events.emit_nowait(EventName.PROGRESS, progressed)
                except (StoreError, TypeError, ValueError, msgspec.EncodeError):
                    # Best effort: the attempt's final write carries the values again.
                    log.warning("could not record progress of job %s", self._job.id, exc_info=True)
        finally:
            self._task = None

    async def close(self) -> None:
        """Stop writing; what was not written yet goes with the job's final transition."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class JobContext:
    """Handed to every handler as its first argument. Safe to use from a handler's thread."""

    def __init__(self, job: Job, reporter: _Reporter) -> None:
        self.job = job
        self._reporter = reporter

    @property
    def id(self) -> str:
        """The job's id."""
        return self.job.id

    @property
    def attempt(self) -> int:
        """Which attempt this is, from 1."""
        return self.job.attempt

    @property
    def max_attempts(self) -> int | None:
        """How many attempts the job may have."""
        return self.job.max_attempts

    @property
    def checkpoint(self) -> Any:
        """The last value saved with save_checkpoint by an earlier attempt (None at first)."""
        return self.job.checkpoint

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress, a percentage from 0 to 100 (clamped), with an optional message;
        recorded in the background, never blocks the handler. To report step i of n, pass
        `100 * i / n`. TypeError for a percent that is not a number or a message that is not
        a string (progress(i, total) is a mistake, not a message); ValueError for NaN."""
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise TypeError(f"progress percent must be a number, not {type(percent).__name__}")
        if math.isnan(percent):
            raise ValueError("progress percent must be a number from 0 to 100, not NaN")
        if message is not None and not isinstance(message, str):
            raise TypeError(
                f"progress message must be a string, not {type(message).__name__}; "
                "to report step i of n, call ctx.progress(100 * i / n)"
            )
        changes: dict[str, Any] = {"progress": max(0.0, min(100.0, float(percent)))}
        if message is not None:
            changes["progress_message"] = message
        self._reporter.report(changes)

    def save_checkpoint(self, value: Any) -> None:
        """Save a value that the next attempt gets back as `ctx.checkpoint` (it must be
        msgpack-serialisable); stored before this attempt's outcome is."""
        self._reporter.report({"checkpoint": value})


def make_context(store: JobStore, job: Job, events: EventPublisher) -> tuple[JobContext, _Reporter]:
    """A context for `job` and the reporter whose unwritten values the worker must keep."""
    reporter = _Reporter(store, job, events, asyncio.get_running_loop())
    return JobContext(job, reporter), reporter
