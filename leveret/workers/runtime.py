"""A running worker: consuming its queues, running handlers, stopping gracefully."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, cast

import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from leveret.broker import (
    BrokerSession,
    Producer,
    consuming_channel,
    epoch_ms,
    queue_depth,
    subscribe,
    unsubscribe,
)
from leveret.broker.control import CancelJob, Command, listen_commands
from leveret.jobs.backoff import DEFAULT_BACKOFF
from leveret.jobs.envelope import ATTEMPT_HEADER, NOT_BEFORE_HEADER, Envelope, decode
from leveret.jobs.errors import (
    ConfigurationError,
    ConsumerLost,
    DuplicateJob,
    LeveretError,
    MalformedMessage,
    StoreError,
)
from leveret.jobs.events import EventName, event_for
from leveret.jobs.model import Job, new_job_id, utcnow
from leveret.jobs.priority import from_amqp
from leveret.jobs.settings import Settings
from leveret.jobs.states import DLQ_STATES, TERMINAL_STATES, JobState
from leveret.jobs.store.protocol import JobStore
from leveret.workers.context import make_context
from leveret.workers.execution import Failed, Interrupt, Interrupted, Outcome, execute
from leveret.workers.registry import Handler, Registry
from leveret.workers.settlement import DEFAULT_MAX_ATTEMPTS, Settler

log = logging.getLogger(__name__)

# States a delivery may start a job from: the normal ways into a work queue.
_START_SOURCES = frozenset({JobState.SCHEDULED, JobState.DELAYED, JobState.RETRYING})
# States a redelivered message may take a job over from: its worker died mid-attempt (running)
# or between recording a retry and publishing it (retrying).
_TAKEOVER_SOURCES = frozenset({JobState.RUNNING, JobState.RETRYING})
_BUSY_STATES = frozenset(
    {JobState.SCHEDULED, JobState.RUNNING, JobState.RETRYING, JobState.DELAYED}
)
_DRAIN_POLL = 0.05
# How often a worker checks that its consumers still exist, and for how many checks in a row
# one may be missing (aio-pika restores consumers itself after a reconnect) before giving up.
CONSUMER_CHECK_INTERVAL = 5.0
CONSUMER_CHECKS_MISSING = 3
_CHANNEL_GONE = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError)
JOB_THREAD_PREFIX = "leveret-job"  # names the threads plain-function handlers run in
_STORE_PAUSE = 1.0


def worker_id() -> str:
    """An id for this worker process: host, pid and a random suffix."""
    return f"{socket.gethostname()}/{os.getpid()}/{new_job_id()[-8:]}"


class Runtime:
    """One worker process's consuming side, from subscribe to graceful stop."""

    def __init__(
        self,
        registry: Registry,
        settings: Settings,
        store: JobStore,
        session: BrokerSession,
    ) -> None:
        self.id = worker_id()
        self.queues = tuple(dict.fromkeys((*settings.queues, *sorted(registry.queues()))))
        self._registry = registry
        self._settings = settings
        self._store = store
        self._session = session
        self._settler = Settler(store, session.router, max_result=settings.max_result)
        self._producer = Producer(store, session)
        self._events = session.events
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._executor = ThreadPoolExecutor(
            settings.concurrency, thread_name_prefix=JOB_THREAD_PREFIX
        )
        self._deliveries: set[asyncio.Task[Any]] = set()
        self._running: dict[str, Interrupt] = {}
        self._stopping = False
        self._channel: AbstractChannel | None = None
        self._consumers: dict[str, str] = {}

    async def start(self) -> None:
        """Declare this worker's queues and start consuming them."""
        for handler in self._registry:
            _check_timeout(handler, self._settings.consumer_timeout)
        for queue in self.queues:
            await self._session.router.ensure_queue(queue)
        self._channel = await consuming_channel(
            self._session.consuming, self._settings.effective_prefetch
        )
        for queue in self.queues:
            name = self._session.names.work_queue(queue)
            self._consumers[queue] = await subscribe(self._channel, name, self._consumer_for(queue))
        await listen_commands(self._session.consuming, self._session.names, self._on_command)
        log.info("worker %s consuming %s", self.id, ", ".join(self.queues))

    def _consumer_for(self, queue: str) -> Any:
        async def on_message(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._deliveries.add(task)
            try:
                async with self._slots:
                    if self._stopping:
                        await self._settler.requeue(message)
                    else:
                        await self._deliver(queue, message)
            finally:
                self._deliveries.discard(task)

        return on_message

    async def _deliver(self, queue: str, message: AbstractIncomingMessage) -> None:
        """The boundary around one delivery: whatever happens, the message is settled."""
        try:
            await self._process(queue, message)
        except StoreError:
            # The store is down: hand the message back, after a pause so that a fleet of
            # workers does not spin on redeliveries while it recovers.
            log.exception("job store failed; delivery requeued in %gs", _STORE_PAUSE)
            await asyncio.sleep(_STORE_PAUSE)
            await self._settler.requeue(message)
        except Exception:
            log.exception("unexpected error handling a delivery; rejected to the DLQ")
            await self._settler.reject(message)

    async def _process(self, queue: str, message: AbstractIncomingMessage) -> None:
        headers = message.headers or {}
        try:
            envelope = decode(
                message.body,
                message.content_type,
                message_id=message.message_id,
                default_queue=queue,
                default_priority=from_amqp(message.priority),
            )
        except MalformedMessage as exc:
            await self._settler.malformed(queue, message, exc.reason)
            return
        not_before = _int_header(headers.get(NOT_BEFORE_HEADER))
        if not_before is not None and epoch_ms() < not_before:
            if await self._ended(envelope):  # cancelled while it waited: stop travelling
                await self._settler.skip(message)
            else:
                await self._settler.hop(queue, message, not_before)
            return
        attempt = max(1, _int_header(headers.get(ATTEMPT_HEADER)) or 1)
        handler = self._registry.get(envelope.type)
        job = await self._start(queue, envelope, attempt, bool(message.redelivered), handler)
        if job is None:
            await self._not_started(message, envelope)
            return
        self._events.emit_nowait(EventName.STARTED, job)
        outcome = await self._run(job, handler)
        ended = await self._finish(message, job, outcome)
        if ended is None:
            return
        event = event_for(ended.state)
        if event is not None:
            self._events.emit_nowait(event, ended)
        if ended.state in TERMINAL_STATES:
            try:
                await self._producer.release_dependents(ended)
            except LeveretError:  # the delivery is settled; a dependent left pending is logged
                log.exception("job %s: could not release its dependents", ended.id)

    async def _finish(
        self, message: AbstractIncomingMessage, job: Job, attempt: _Attempt
    ) -> Job | None:
        """Record the attempt's outcome and settle the delivery. While the store cannot be
        written, keep the delivery and try again: the handler's work is done, and handing the
        message back would run it again and charge the job an attempt it did not lose. Once
        the worker is stopping, hand it back."""
        while True:
            try:
                return await self._settler.finish(message, job, attempt.outcome, attempt.reported)
            except StoreError:
                if self._stopping:
                    log.exception("job %s: store write failed; delivery requeued", job.id)
                    await self._settler.requeue(message)
                    return None
                log.exception(
                    "job %s: store write failed; trying again in %gs", job.id, _STORE_PAUSE
                )
                await asyncio.sleep(_STORE_PAUSE)

    async def _not_started(self, message: AbstractIncomingMessage, envelope: Envelope) -> None:
        """Settle a delivery that has nothing to run. A redelivered message of a job the store
        has failed or dead-lettered goes to the DLQ once more: its worker wrote that end, then
        died or lost its channel before the DLQ copy was confirmed, and acking it here would
        leave the job in no DLQ at all. (If the copy did arrive, the DLQ now holds two.)"""
        assert envelope.id is not None
        if message.redelivered:
            current = await self._store.get(envelope.id)
            if current is not None and current.state in DLQ_STATES:
                log.info(
                    "job %s is %s but its message came back; sending it to the DLQ again",
                    current.id,
                    current.state,
                )
                await self._settler.dead_letter_again(message, current)
                return
        await self._settler.skip(message)

    async def _ended(self, envelope: Envelope) -> bool:
        assert envelope.id is not None
        current = await self._store.get(envelope.id)
        return current is not None and current.state in TERMINAL_STATES

    async def _start(
        self,
        queue: str,
        envelope: Envelope,
        attempt: int,
        redelivered: bool,
        handler: Handler | None,
    ) -> Job | None:
        """Move the job to running, or None when this delivery has nothing to run."""
        assert envelope.id is not None
        changes: dict[str, Any] = {
            "attempt": attempt,
            "started_at": utcnow(),
            "worker": self.id,
            "max_attempts": envelope.max_attempts
            or (handler.max_attempts if handler else None)
            or DEFAULT_MAX_ATTEMPTS,
            "backoff": envelope.backoff
            or (handler.backoff if handler else None)
            or DEFAULT_BACKOFF,
        }
        store = self._store
        job = await store.transition(
            envelope.id,
            JobState.RUNNING,
            sources=_START_SOURCES,
            attempt=attempt - 1,
            changes=changes,
        )
        if job is not None:
            return job
        current = await store.get(envelope.id)
        if current is None:
            return await self._record(queue, envelope, changes)
        if redelivered and current.state in _TAKEOVER_SOURCES:
            # The broker gives a message back only when the channel that held it closed: the
            # worker running it died. The lost attempt counts, so a job that kills its worker
            # every time ends in the DLQ instead of looping. The count comes from the store,
            # not the header: a requeued message keeps the header it was first sent with.
            lost = current.attempt
            changes["attempt"] = lost + 1
            changes["last_error"] = f"worker running attempt {lost} was lost"
            return await store.transition(
                envelope.id,
                JobState.RUNNING,
                sources=_TAKEOVER_SOURCES,
                attempt=lost,
                changes=changes,
            )
        return None  # a duplicate, or the job was cancelled or has finished

    async def _record(self, queue: str, envelope: Envelope, changes: dict[str, Any]) -> Job | None:
        """Store a job first met here (published straight over AMQP), already running."""
        assert envelope.id is not None
        job = Job(
            id=envelope.id,
            type=envelope.type,
            state=JobState.RUNNING,
            queue=queue,
            priority=envelope.priority if envelope.priority is not None else 2,
            payload=envelope.payload,
            timeout=envelope.timeout,
            idempotency_key=envelope.idempotency_key,
            correlation_id=envelope.correlation_id,
            tags=envelope.tags,
            scheduled_at=envelope.scheduled_at,
            **changes,
        )
        try:
            return await self._store.create(job)
        except DuplicateJob:
            return None  # another delivery of it, or its idempotency key, got there first

    async def _run(self, job: Job, handler: Handler | None) -> _Attempt:
        if handler is None:
            failure = Failed(f"no handler for job type {job.type!r}", "no_handler", retryable=False)
            return _Attempt(failure, {})
        if job.attempt > (job.max_attempts or DEFAULT_MAX_ATTEMPTS):
            # Taken over after its workers died once too often.
            return _Attempt(Failed(job.last_error or "worker lost", "lost", retryable=True), {})
        limit = job.timeout or handler.timeout or self._settings.default_timeout
        time_limit = min(limit, self._settings.consumer_timeout)
        ctx, reporter = make_context(self._store, job, self._events)
        interrupt = Interrupt()
        self._running[job.id] = interrupt
        try:
            outcome = await execute(
                handler,
                ctx,
                job.payload,
                time_limit=time_limit,
                executor=self._executor,
                interrupt=interrupt,
            )
        finally:
            # pop, not del: after a reconnect the same job can briefly run twice here.
            self._running.pop(job.id, None)
            await reporter.close()
        if not handler.is_async and _abandoned(outcome):
            self._renew_executor()
        return _Attempt(outcome, reporter.latest)

    def _renew_executor(self) -> None:
        # A plain function left running past its time limit or cancel cannot be stopped, and
        # keeps its thread in the pool: once `concurrency` of them hang, every later plain
        # function would wait behind them for ever. Later calls get a fresh pool; the old
        # one's threads end with their calls.
        self._executor.shutdown(wait=False)
        self._executor = ThreadPoolExecutor(
            self._settings.concurrency, thread_name_prefix=JOB_THREAD_PREFIX
        )

    async def watch_consumers(self) -> None:
        """Raise ConsumerLost once a consumer has been missing from an open channel for
        CONSUMER_CHECKS_MISSING checks in a row: the broker cancelled it (its queue was
        deleted, say) and it did not come back. Never returns otherwise."""
        missing: dict[str, int] = {}
        while True:
            await asyncio.sleep(CONSUMER_CHECK_INTERVAL)
            channel = self._channel
            if channel is None or channel.is_closed:
                continue  # reconnecting: aio-pika restores the consumers
            underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
            consumers = underlay.consumers
            for queue, tag in self._consumers.items():
                missing[queue] = 0 if tag in consumers else missing.get(queue, 0) + 1
                if missing[queue] >= CONSUMER_CHECKS_MISSING:
                    raise ConsumerLost(queue)

    def _on_command(self, command: Command) -> None:
        if isinstance(command, CancelJob) and self.cancel_job(command.job_id):
            log.info("job %s: cancelled while running", command.job_id)

    def cancel_job(self, job_id: str) -> bool:
        """Stop the handler running `job_id` here, if any (the caller recorded the state)."""
        interrupt = self._running.get(job_id)
        if interrupt is None:
            return False
        interrupt.fire("cancelled")
        return True

    async def drained(self) -> None:
        """Return once nothing is left to do: no delivery in hand, the work queues empty, and
        no job of these queues waiting or running in the store (twice in a row)."""
        quiet = 0
        while quiet < 2:
            await asyncio.sleep(_DRAIN_POLL)
            quiet = quiet + 1 if await self._idle() else 0

    async def _idle(self) -> bool:
        if self._deliveries:
            return False
        for queue in self.queues:
            ready, _ = await queue_depth(
                self._session.consuming, self._session.names.work_queue(queue)
            )
            if ready:
                return False
        counts = await self._store.counts()
        return not any(
            n
            for queue in self.queues
            for state, n in counts.get(queue, {}).items()
            if state in _BUSY_STATES
        )

    async def stop(self, grace: float) -> None:
        """Stop consuming, let running jobs finish for `grace` seconds, hand the rest back."""
        self._stopping = True
        if self._channel is not None and not self._channel.is_closed:
            for queue, tag in self._consumers.items():
                try:
                    await unsubscribe(self._channel, self._session.names.work_queue(queue), tag)
                except _CHANNEL_GONE:  # its deliveries requeue when the channel closes
                    log.warning("could not cancel consumer on %s", queue, exc_info=True)
        pending = set(self._deliveries)
        if pending:
            log.info("waiting up to %gs for %d job(s) to finish", grace, len(self._running))
            _, pending = await asyncio.wait(pending, timeout=grace)
        if pending:
            log.warning("handing %d unfinished job(s) back to the queue", len(self._running))
            for interrupt in list(self._running.values()):
                interrupt.fire("shutdown")
            await asyncio.wait(pending)
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


class _Attempt(NamedTuple):
    """What one attempt came to, with the progress values its handler reported."""

    outcome: Outcome
    reported: dict[str, Any]


def _abandoned(outcome: Outcome) -> bool:
    """Whether the handler was left running when the attempt ended (timed out or stopped)."""
    if isinstance(outcome, Failed):
        return outcome.category == "timeout"
    return isinstance(outcome, Interrupted)


def _check_timeout(handler: Handler, consumer_timeout: float) -> None:
    # RabbitMQ closes the channel of a consumer that holds a delivery past consumer_timeout,
    # requeuing every job on it: refuse to start rather than find out in production.
    if handler.timeout is not None and handler.timeout > consumer_timeout:
        raise ConfigurationError(
            f"handler {handler.name!r} timeout {handler.timeout:g}s exceeds the broker's "
            f"consumer_timeout ({consumer_timeout:g}s); raise consumer_timeout on the broker "
            "and LEVERET_CONSUMER_TIMEOUT, or shorten the handler's timeout"
        )


def _int_header(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | str):
        try:
            return int(value)
        except ValueError:
            return None
    return None
