"""The one place a worker settles a delivery: the store write a decision asks for, the
publish that must follow (retry, DLQ copy, hop), then the ack.

Order matters and is the same everywhere: write the job's new state, then publish what must
follow, then ack. A crash between two steps leaves the message unacked, so the broker
redelivers it, and the conditional store writes make the redelivery pick up where this one
stopped.
"""

from __future__ import annotations

import logging

from leveret.broker import Delivery, JobRouter, OutgoingMessage, PublishReason, epoch_ms
from leveret.jobs.errors import LeveretError
from leveret.jobs.model import Job, utcnow
from leveret.jobs.states import JobState
from leveret.jobs.store.protocol import JobStore
from leveret.workers.decision import UNSERIALISABLE, Action, Decision, decide
from leveret.workers.outcomes import AttemptFailed, ErrorCategory

log = logging.getLogger(__name__)

_RUNNING = frozenset({JobState.RUNNING})


class Settler:
    """Settles deliveries for one worker process."""

    def __init__(self, store: JobStore, router: JobRouter, *, max_result: int) -> None:
        self._store = store
        self._router = router
        self.max_result = max_result

    async def carry_out(self, delivery: Delivery, job: Job, decision: Decision) -> Job | None:
        """Write `decision` for `job` (as claimed), route what follows and settle the
        delivery. Returns the job as written, or None when the store refused the write (the
        job was cancelled or taken over meanwhile). Raises StoreError when the store cannot
        be written, with nothing written or settled: the caller decides whether to try
        again or to hand the delivery back."""
        try:
            stored = await self._store.transition(
                job.id,
                decision.target,
                sources=_RUNNING,
                attempt=job.attempt,
                changes=decision.changes,
            )
        except UNSERIALISABLE as exc:
            # A checkpoint the handler saved cannot be stored (the result was checked when
            # deciding): record the failure without what was reported, or that write would
            # fail the same way.
            error = f"result or checkpoint is not serialisable: {exc}"
            failure = AttemptFailed(error, ErrorCategory.UNSERIALISABLE, retryable=False)
            instead = decide(job, failure, {}, max_result=self.max_result, now=utcnow())
            return await self.carry_out(delivery, job, instead)
        if decision.action is Action.HAND_BACK:
            await delivery.requeue()
        elif stored is None:
            await delivery.ack()
        elif decision.action is Action.RETRY:
            await self._retry(delivery, stored, decision)
        elif decision.action is Action.DEAD_LETTER:
            log.info("job %s %s", job.id, decision.reason)
            copy = delivery.carrying(stored, job.attempt)
            await self._to_dlq(job.queue, delivery, copy, decision.reason or "", stored)
        else:
            await delivery.ack()
        return stored

    async def _retry(self, delivery: Delivery, job: Job, decision: Decision) -> None:
        assert decision.next_attempt is not None
        assert decision.not_before is not None
        not_before = epoch_ms(decision.not_before)
        again = delivery.carrying(job, decision.next_attempt, not_before)
        try:
            await self._router.send(
                job.queue, again, not_before, reason=PublishReason.RETRY, job=job
            )
        except LeveretError:
            # The store says retrying with this attempt; the redelivery takes it over.
            log.warning("job %s: could not publish its retry; requeued", job.id, exc_info=True)
            await delivery.requeue()
            return
        await delivery.ack()

    async def skip(self, delivery: Delivery) -> None:
        """Ack a delivery that has nothing left to do: a duplicate, or its job is cancelled
        or already finished."""
        await delivery.ack()

    async def requeue(self, delivery: Delivery) -> None:
        """Hand a delivery back to its queue untouched."""
        await delivery.requeue()

    async def reject(self, delivery: Delivery) -> None:
        """Reject a delivery to its queue's dead-letter exchange (the DLQ), as it is."""
        await delivery.reject()

    async def dead_letter_again(self, delivery: Delivery, job: Job) -> None:
        """Send to its DLQ, then ack, a redelivery of a job the store already has failed or
        dead-lettered: the worker that wrote that end stopped short of the DLQ."""
        reason = f"{job.state}: {job.last_error or 'no error recorded'}"
        await self._to_dlq(job.queue, delivery, delivery.carrying(job, job.attempt), reason, job)

    async def malformed(self, queue: str, delivery: Delivery, reason: str) -> None:
        """Send an unreadable message to its queue's DLQ with `reason`, then ack it."""
        log.warning("malformed message on queue %s: %s", queue, reason)
        await self._to_dlq(queue, delivery, delivery.copy(), reason, None)

    async def hop(self, queue: str, delivery: Delivery, not_before_ms: int) -> None:
        """Send an early delivery on to the next delay tier, then ack it."""
        try:
            await self._router.send(queue, delivery.copy(), not_before_ms, reason=PublishReason.HOP)
        except LeveretError:
            log.warning("could not forward a delayed message; requeued", exc_info=True)
            await delivery.requeue()
            return
        await delivery.ack()

    async def _to_dlq(
        self,
        queue: str,
        delivery: Delivery,
        copy: OutgoingMessage,
        reason: str,
        job: Job | None,
    ) -> None:
        try:
            await self._router.ensure_queue(queue)
            await self._router.dead_letter(queue, copy, reason, job=job)
        except LeveretError:
            # The work queue's own dead-letter exchange still takes it, without the reason.
            log.warning("DLQ publish failed; rejecting to the queue's DLX", exc_info=True)
            await delivery.reject()
            return
        await delivery.ack()
