"""What users do to existing jobs: cancel, retry, delete. The gateway's verbs, in one place."""

from __future__ import annotations

import logging

from leveret.broker.control import CancelJob, send_command
from leveret.broker.hooks import PublishReason
from leveret.broker.producer import Producer
from leveret.jobs.errors import BrokerError, JobNotFound, WrongState
from leveret.jobs.events import EventName
from leveret.jobs.model import Job, utcnow
from leveret.jobs.states import ACTIVE_STATES, TERMINAL_STATES, JobState

log = logging.getLogger(__name__)

RETRYABLE_STATES = frozenset({JobState.FAILED, JobState.DEAD_LETTER, JobState.CANCELLED})


class JobActions:
    """Cancels, retries and deletes jobs: store first, then the broker, then the event."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._store = producer.store
        self._session = producer.session

    async def cancel(self, job_id: str, reason: str | None = None) -> Job:
        """Cancel a job that has not finished. A running job's handler is stopped on its
        worker (over the control exchange); the job ends `cancelled` and is not retried.
        JobNotFound, or WrongState when it has already finished."""
        while True:
            current = await self._get(job_id)
            if current.state in TERMINAL_STATES:
                raise WrongState(job_id, current.state, "cancel")
            cancelled = await self._store.transition(
                job_id,
                JobState.CANCELLED,
                sources=frozenset({current.state}),
                changes={"completed_at": utcnow(), "last_error": reason or "cancelled"},
            )
            if cancelled is not None:
                break  # else it moved on meanwhile: look again
        if current.state is JobState.RUNNING:
            await self._stop_handler(job_id)
        self._session.events.emit_nowait(EventName.CANCELLED, cancelled)
        await self._producer.release_dependents(cancelled)
        return cancelled

    async def retry(self, job_id: str, *, reset_attempts: bool = False) -> Job:
        """Send a failed, dead-lettered or cancelled job back to its queue. Without
        `reset_attempts` it keeps its attempt count and gets one more attempt at least.
        JobNotFound, or WrongState from any other state."""
        current = await self._get(job_id)
        if current.state not in RETRYABLE_STATES:
            raise WrongState(job_id, current.state, "retry")
        attempt = 0 if reset_attempts else current.attempt
        max_attempts = current.max_attempts
        if max_attempts is not None:  # None: never run, the handler's default still to come
            max_attempts = max(max_attempts, attempt + 1)
        changes = {
            "attempt": attempt,
            "max_attempts": max_attempts,
            "progress": None,
            "progress_message": None,
            "scheduled_at": None,
            "completed_at": None,
            "result": None,
            "worker": None,
        }
        retried = await self._store.transition(
            job_id, JobState.SCHEDULED, sources=frozenset({current.state}), changes=changes
        )
        if retried is None:  # it moved on meanwhile (retried by someone else, deleted)
            latest = await self._get(job_id)
            raise WrongState(job_id, latest.state, "retry")
        await self._session.events.emit(EventName.RETRIED, retried)
        try:
            await self._producer.publish(retried, PublishReason.REPLAY)
        except BrokerError:
            # Scheduled with no message would wait for ever: park it where a retry can be
            # asked for again, and say why.
            parked = await self._store.transition(
                job_id,
                JobState.CANCELLED,
                sources=frozenset({JobState.SCHEDULED}),
                changes={"last_error": "retry not sent: the broker did not take it"},
            )
            if parked is not None:
                self._session.events.emit_nowait(EventName.CANCELLED, parked)
            raise
        return retried

    async def delete(self, job_id: str) -> None:
        """Remove a job, cancelling it first if it has not finished. JobNotFound."""
        current = await self._get(job_id)
        if current.state in ACTIVE_STATES:
            try:
                current = await self.cancel(job_id, "deleted")
            except WrongState:  # it finished meanwhile: delete it as it is
                current = await self._get(job_id)
        if not await self._store.delete(job_id):
            raise JobNotFound(job_id)
        self._session.events.emit_nowait(EventName.DELETED, current)

    async def _stop_handler(self, job_id: str) -> None:
        # The cancel is recorded already, so the handler's outcome will be refused whatever
        # happens here; stopping it only saves the work.
        try:
            heard = await send_command(
                self._session.publisher, self._session.names, CancelJob(job_id)
            )
        except BrokerError:
            log.warning("job %s cancelled, but its worker could not be told to stop", job_id)
            return
        if not heard:  # its worker is gone: the redelivered message finds the job cancelled
            log.info("job %s cancelled while running; no worker is listening", job_id)

    async def _get(self, job_id: str) -> Job:
        job = await self._store.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job
