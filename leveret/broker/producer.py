"""Submitting jobs from Python straight over AMQP, with every job recorded in the store."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any

from leveret.broker.hooks import PublishReason
from leveret.broker.messages import epoch_ms, job_message
from leveret.broker.session import BrokerSession
from leveret.jobs.envelope import Envelope
from leveret.jobs.errors import DuplicateJob, InvalidJob
from leveret.jobs.events import EventName
from leveret.jobs.model import Job, utcnow
from leveret.jobs.rules import check_payload
from leveret.jobs.states import DLQ_STATES, JobState
from leveret.jobs.store.protocol import JobStore
from leveret.jobs.submission import Submission


class Producer:
    """Creates jobs: one store write, then one confirmed publish.

    The job is stored before it is published, so a worker never meets a job the store has
    not heard of. If the publish fails, the job is cancelled (its idempotency key freed) and
    the error raised: a job is never left half-created, and a message that reaches the broker
    after all is dropped by the worker that meets it.
    """

    def __init__(self, store: JobStore, session: BrokerSession) -> None:
        self.store = store
        self.session = session
        self.router = session.router
        self.events = session.events

    async def submit(self, type: str, payload: Any = None, **options: Any) -> Job:
        """Submit a job of `type`; `options` are the fields of `Submission`."""
        job, _ = await self.submit_one(Submission(type=type, payload=payload, **options))
        return job

    async def submit_one(self, submission: Submission) -> tuple[Job, bool]:
        """Submit one job; returns it and whether it is new (False: the idempotency key was
        already used, and the existing job is returned)."""
        self._check_payload(submission)
        job = submission.to_job()
        await self._check_dependencies(job)
        try:
            await self.store.create(job)
        except DuplicateJob as exc:
            if exc.idempotency_key is None:
                raise
            existing = await self.store.find_by_idempotency_key(exc.idempotency_key)
            if existing is None:  # deleted in between: nothing to return but the clash
                raise
            if existing.state in _UNSTARTED and existing.attempt == 0:
                # Whoever stored it may have died before publishing it (a gateway killed
                # mid-submit): the key's owner asking again is the one sign of that we get.
                # Publish it again; should the first copy exist after all, the second is a
                # duplicate delivery, which the worker drops.
                await self.publish(existing, PublishReason.SUBMIT)
            return existing, False
        await self._publish_or_void([job])
        if job.state is JobState.PENDING:
            await self.release_if_ready(job)
        return job, True

    async def submit_many(self, submissions: Sequence[Submission]) -> list[Job]:
        """Submit several jobs: all are stored or none is; then all are published at once."""
        for submission in submissions:
            self._check_payload(submission)
        jobs = [s.to_job() for s in submissions]
        for job in jobs:
            await self._check_dependencies(job)
        await self.store.create_many(jobs)
        await self._publish_or_void(jobs)
        for job in jobs:
            if job.state is JobState.PENDING:
                await self.release_if_ready(job)
        return jobs

    async def publish(self, job: Job, reason: PublishReason) -> None:
        """Publish an already stored job (to its delay tier when it must wait)."""
        await self.router.ensure_queue(job.queue)
        not_before = epoch_ms(job.scheduled_at) if job.scheduled_at else None
        message = job_message(Envelope.of(job), attempt=job.attempt + 1, not_before_ms=not_before)
        await self.router.send(job.queue, message, not_before, reason=reason, job=job)

    async def release_if_ready(self, job: Job) -> None:
        """Move a pending job on when its dependencies are done: scheduled if they all
        completed, cancelled if one of them can no longer complete."""
        deps = [await self.store.get(dep) for dep in job.depends_on]
        for dep_id, dep in zip(job.depends_on, deps, strict=True):
            if dep is None or dep.state in _NEVER_COMPLETES:
                ended = "was deleted" if dep is None else f"ended {dep.state}"
                cancelled = await self.store.transition(
                    job.id,
                    JobState.CANCELLED,
                    sources=frozenset({JobState.PENDING}),
                    changes={"last_error": f"dependency {dep_id} {ended}"},
                )
                if cancelled is not None:
                    self.events.emit_nowait(EventName.CANCELLED, cancelled)
                    await self.release_dependents(cancelled)
                return
        if all(d is not None and d.state is JobState.COMPLETED for d in deps):
            released = await self.store.transition(
                job.id, JobState.SCHEDULED, sources=frozenset({JobState.PENDING})
            )
            if released is not None:  # only the caller that moved it publishes it
                await self.events.emit(EventName.SCHEDULED, released)
                await self.publish(released, PublishReason.RELEASE)

    async def release_dependents(self, job: Job) -> None:
        """Move on the pending jobs that wait for `job`, which has just ended."""
        for dependent in await self.store.dependents(job.id):
            if dependent.state is JobState.PENDING:
                await self.release_if_ready(dependent)

    def _check_payload(self, submission: Submission) -> None:
        check_payload(submission.payload, self.session.settings.max_payload)

    async def _check_dependencies(self, job: Job) -> None:
        for dep in job.depends_on:
            if await self.store.get(dep) is None:
                raise InvalidJob("depends_on", f"unknown job {dep}")

    async def _publish_or_void(self, jobs: Sequence[Job]) -> None:
        for job in jobs:  # before the publish: no worker may say `started` first
            await self.events.emit(EventName.CREATED, job)
        runnable = [j for j in jobs if j.state is not JobState.PENDING]
        failed = await _failures(self.publish(j, PublishReason.SUBMIT) for j in runnable)
        if not failed:
            return
        # A publish that timed out may still reach the broker later. Deleted, the job would
        # then be recorded and run by the worker that met it; cancelled, it is dropped. The
        # idempotency key is freed, so the caller's retry creates the job afresh.
        reason = f"not accepted: {failed[0]}"
        for job in jobs:
            void = await self.store.transition(
                job.id,
                JobState.CANCELLED,
                changes={"idempotency_key": None, "last_error": reason, "completed_at": utcnow()},
            )
            if void is not None:
                self.events.emit_nowait(EventName.CANCELLED, void)
        raise failed[0]


_NEVER_COMPLETES = DLQ_STATES | {JobState.CANCELLED}
# A job in one of these states with no attempt yet waits for a message that may not exist.
_UNSTARTED = frozenset({JobState.SCHEDULED, JobState.DELAYED})


async def _failures(publishes: Iterable[Coroutine[Any, Any, None]]) -> list[BaseException]:
    """Run the publishes at once (their confirms pipeline); the errors they raised. One
    publish, the common case, is awaited in place rather than wrapped in a task."""
    pending = list(publishes)
    if len(pending) == 1:
        try:
            await pending[0]
        except Exception as exc:
            return [exc]
        return []
    results = await asyncio.gather(*pending, return_exceptions=True)
    return [r for r in results if isinstance(r, BaseException)]
