"""The one place a worker settles a message: acks, nacks, rejects, and the store write and
republish that must come first.

Order matters and is the same everywhere: write the job's new state, then publish what must
follow (retry, DLQ copy, hop), then ack. A crash between two steps leaves the message
unacked, so the broker redelivers it, and the conditional store writes make the redelivery
pick up where this one stopped.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import aio_pika
import aiormq
import msgspec
from aio_pika.abc import AbstractIncomingMessage, HeadersType

from leveret.broker.messages import build_message, epoch_ms, job_headers
from leveret.broker.router import JobRouter
from leveret.jobs.backoff import DEFAULT_BACKOFF
from leveret.jobs.errors import LeveretError
from leveret.jobs.model import Job, utcnow
from leveret.jobs.priority import from_amqp
from leveret.jobs.states import JobState
from leveret.jobs.store.protocol import JobStore
from leveret.topology import TIER_HEADER
from leveret.workers.execution import Completed, Failed, Interrupted, Outcome

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 3

_STALE_DELIVERY = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError)


class Settler:
    """Settles deliveries for one worker process."""

    def __init__(self, store: JobStore, router: JobRouter, *, max_result: int) -> None:
        self._store = store
        self._router = router
        self._max_result = max_result

    async def skip(self, message: AbstractIncomingMessage) -> None:
        """Ack a delivery that has nothing left to do: a duplicate, or its job is cancelled
        or already finished."""
        await _ack(message)

    async def dead_letter_again(self, message: AbstractIncomingMessage, job: Job) -> None:
        """Send to its DLQ, then ack, a redelivery of a job the store already has failed or
        dead-lettered: the worker that wrote that end stopped short of the DLQ."""
        reason = f"{job.state}: {job.last_error or 'no error recorded'}"
        copy = _copy(message, _headers(message, job.attempt), job=job)
        await self._to_dlq(job.queue, message, copy, reason)

    async def requeue(self, message: AbstractIncomingMessage) -> None:
        """Hand a delivery back to its queue untouched."""
        await _nack(message, requeue=True)

    async def reject(self, message: AbstractIncomingMessage) -> None:
        """Reject a delivery to its queue's dead-letter exchange (the DLQ), as it is."""
        await _reject(message)

    async def malformed(self, queue: str, message: AbstractIncomingMessage, reason: str) -> None:
        """Send an unreadable message to its queue's DLQ with `reason`, then ack it."""
        log.warning("malformed message on queue %s: %s", queue, reason)
        await self._to_dlq(queue, message, _copy(message, message.headers or {}), reason)

    async def hop(self, queue: str, message: AbstractIncomingMessage, not_before_ms: int) -> None:
        """Send an early delivery on to the next delay tier, then ack it."""
        try:
            await self._router.send(queue, _copy(message, message.headers or {}), not_before_ms)
        except LeveretError:
            log.warning("could not forward a delayed message; requeued", exc_info=True)
            await _nack(message, requeue=True)
            return
        await _ack(message)

    async def finish(
        self,
        message: AbstractIncomingMessage,
        job: Job,
        outcome: Outcome,
        reported: dict[str, Any],
    ) -> Job | None:
        """Record `outcome` of `job`'s attempt, route what follows, settle the delivery.

        `reported` holds progress and checkpoint values the handler reported; they are
        written with the outcome. Returns the job as stored afterwards, or None if the store
        refused (the job was cancelled or taken over meanwhile). Raises StoreError when the
        store cannot be written, with nothing written or settled: the caller decides whether
        to try again or to hand the delivery back.
        """
        if isinstance(outcome, Completed):
            return await self._complete(message, job, outcome, reported)
        if isinstance(outcome, Interrupted):
            return await self._interrupted(message, job, outcome)
        return await self._fail(message, job, outcome, reported)

    async def _complete(
        self,
        message: AbstractIncomingMessage,
        job: Job,
        outcome: Completed,
        reported: dict[str, Any],
    ) -> Job | None:
        changes = {**reported, "result": outcome.result, "completed_at": utcnow()}
        changes["progress"] = 100.0
        size = _encoded_size(outcome.result)
        if size is not None and size > self._max_result:
            error = f"result is {size} bytes, over the limit of {self._max_result}"
            return await self._fail(message, job, Failed(error, "result_too_large", False), {})
        try:
            _JSON_ENCODER.encode(outcome.result)  # the API shows results as JSON
            done = await self._store.transition(
                job.id, JobState.COMPLETED, sources=_RUNNING, attempt=job.attempt, changes=changes
            )
        except _UNSERIALISABLE as exc:
            # The result, or a checkpoint the handler saved, cannot be stored: record the
            # failure without them, or that write would fail the same way.
            error = f"result or checkpoint is not serialisable: {exc}"
            failure = Failed(error, "unserialisable", retryable=False)
            return await self._fail(message, job, failure, {})
        await _ack(message)
        return done

    async def _fail(
        self,
        message: AbstractIncomingMessage,
        job: Job,
        outcome: Failed,
        reported: dict[str, Any],
    ) -> Job | None:
        max_attempts = job.max_attempts or DEFAULT_MAX_ATTEMPTS
        changes: dict[str, Any] = {
            **reported,
            "last_error": outcome.error,
            "error_category": outcome.category,
        }
        if outcome.retryable and job.attempt < max_attempts:
            return await self._retry(message, job, outcome, changes)
        target = JobState.DEAD_LETTER if outcome.retryable else JobState.FAILED
        changes["completed_at"] = utcnow()
        ended = await self._store.transition(
            job.id, target, sources=_RUNNING, attempt=job.attempt, changes=changes
        )
        if ended is None:
            await _ack(message)
            return None
        log.info("job %s %s: %s", job.id, target, outcome.error)
        reason = f"{target}: {outcome.error}"
        await self._to_dlq(
            job.queue, message, _copy(message, _headers(message, job.attempt)), reason
        )
        return ended

    async def _retry(
        self,
        message: AbstractIncomingMessage,
        job: Job,
        outcome: Failed,
        changes: dict[str, Any],
    ) -> Job | None:
        backoff = job.backoff or DEFAULT_BACKOFF
        delay = outcome.delay if outcome.delay is not None else backoff.delay(job.attempt)
        run_at = utcnow() + timedelta(seconds=delay)
        changes["scheduled_at"] = run_at
        retrying = await self._store.transition(
            job.id, JobState.RETRYING, sources=_RUNNING, attempt=job.attempt, changes=changes
        )
        if retrying is None:
            await _ack(message)
            return None
        not_before = epoch_ms(run_at)
        again = _copy(message, _headers(message, job.attempt + 1, not_before), job=job)
        try:
            await self._router.send(job.queue, again, not_before)
        except LeveretError:
            # The store says retrying with this attempt; the redelivery takes it over.
            log.warning("job %s: could not publish its retry; requeued", job.id, exc_info=True)
            await _nack(message, requeue=True)
            return retrying
        await _ack(message)
        return retrying

    async def _interrupted(
        self, message: AbstractIncomingMessage, job: Job, outcome: Interrupted
    ) -> Job | None:
        if outcome.reason == "cancelled":
            # Whoever cancelled it has usually written the state already; if not, write it now.
            cancelled = await self._store.transition(
                job.id,
                JobState.CANCELLED,
                sources=_RUNNING,
                attempt=job.attempt,
                changes={"completed_at": utcnow(), "last_error": "cancelled while running"},
            )
            await _ack(message)
            return cancelled
        # Shutdown: hand the job back as if this attempt never started, so it does not count.
        back = await self._store.transition(
            job.id,
            JobState.SCHEDULED,
            sources=_RUNNING,
            attempt=job.attempt,
            changes={"attempt": job.attempt - 1, "worker": None, "started_at": None},
        )
        await _nack(message, requeue=True)
        return back

    async def _to_dlq(
        self,
        queue: str,
        message: AbstractIncomingMessage,
        copy: aio_pika.Message,
        reason: str,
    ) -> None:
        try:
            await self._router.ensure_queue(queue)
            await self._router.dead_letter(queue, copy, reason)
        except LeveretError:
            # The work queue's own dead-letter exchange still takes it, without the reason.
            log.warning("DLQ publish failed; rejecting to the queue's DLX", exc_info=True)
            await _reject(message)
            return
        await _ack(message)


_RUNNING = frozenset({JobState.RUNNING})
_ENCODER = msgspec.msgpack.Encoder()
_JSON_ENCODER = msgspec.json.Encoder()
# What encoding a value msgpack or JSON cannot carry raises (OverflowError: an int past 64
# bits; RecursionError: a circular or too deeply nested value).
_UNSERIALISABLE = (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError)


def _encoded_size(value: Any) -> int | None:
    """Bytes `value` takes as msgpack, or None when it cannot be encoded (the store's own
    write then reports it)."""
    try:
        return len(_ENCODER.encode(value))
    except _UNSERIALISABLE:
        return None


def _headers(
    message: AbstractIncomingMessage, attempt: int, not_before_ms: int | None = None
) -> HeadersType:
    # Keep the producer's own headers (trace context and any of theirs); drop the broker's
    # x-death bookkeeping and our own, which job_headers sets afresh.
    kept = {
        k: v
        for k, v in (message.headers or {}).items()
        if not k.startswith("x-") and k != TIER_HEADER
    }
    return job_headers(attempt, not_before_ms, kept)


def _copy(
    message: AbstractIncomingMessage, headers: HeadersType, *, job: Job | None = None
) -> aio_pika.Message:
    """A new message with the delivery's body (re-sent as it came, JSON or msgpack)."""
    priority = job.priority if job is not None else int(from_amqp(message.priority))
    return build_message(
        message.body,
        content_type=message.content_type,
        job_id=job.id if job is not None else message.message_id,
        job_type=job.type if job is not None else message.type,
        priority=priority,
        headers=headers,
    )


async def _ack(message: AbstractIncomingMessage) -> None:
    try:
        await message.ack()
    except _STALE_DELIVERY:
        # The channel was replaced after a reconnect: this delivery tag is dead and the
        # broker redelivers the message, which the store's conditional writes make harmless.
        log.info("could not ack a delivery on a lost channel; it will be redelivered")


async def _nack(message: AbstractIncomingMessage, *, requeue: bool) -> None:
    try:
        await message.nack(requeue=requeue)
    except _STALE_DELIVERY:
        log.info("could not nack a delivery on a lost channel; it will be redelivered")


async def _reject(message: AbstractIncomingMessage) -> None:
    try:
        await message.reject(requeue=False)
    except _STALE_DELIVERY:
        log.info("could not reject a delivery on a lost channel; it will be redelivered")
