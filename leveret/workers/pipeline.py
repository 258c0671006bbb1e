"""One delivery, from the message to the settled job, in the order it happens:

    arrive   decode the envelope (unreadable: to the DLQ); still early: on to the next tier
    claim    one conditional write makes the job `running` here, or finds nothing to run
    run      the handler, with its context and time limit, inside the middleware
    settle   decide what the outcome means, write it, route what follows, ack
    after    announce how it ended, and release the jobs that waited for it

`handle` is the boundary around all of it: whatever happens, the delivery is settled.
"""

from __future__ import annotations

import asyncio
import logging

from leveret.broker import BrokerSession, Delivery, Producer, epoch_ms
from leveret.jobs.envelope import Envelope, decode
from leveret.jobs.errors import LeveretError, MalformedMessage, StoreError
from leveret.jobs.events import EventName, event_for
from leveret.jobs.model import Job, utcnow
from leveret.jobs.states import DLQ_STATES, TERMINAL_STATES
from leveret.jobs.store.protocol import JobStore
from leveret.workers.claim import Claimer
from leveret.workers.decision import decide
from leveret.workers.middleware import Settlement, Stack
from leveret.workers.registry import Registry
from leveret.workers.run import Attempt, Runner
from leveret.workers.settle import Settler

log = logging.getLogger(__name__)

STORE_PAUSE = 1.0  # seconds between tries while the store cannot be written


class Pipeline:
    """Takes deliveries through arrive → claim → run → settle → after."""

    def __init__(
        self,
        *,
        worker_id: str,
        registry: Registry,
        store: JobStore,
        session: BrokerSession,
        runner: Runner,
        stack: Stack,
    ) -> None:
        self._registry = registry
        self._store = store
        self._events = session.events
        self._producer = Producer(store, session)
        self._claimer = Claimer(store, worker_id)
        self._runner = runner
        self._settler = Settler(store, session.router, max_result=session.settings.max_result)
        self._stack = stack
        self.stopping = False  # set when the worker stops: deliveries then go back

    async def handle(self, queue: str, delivery: Delivery) -> None:
        """Take one delivery of `queue` through the pipeline; it ends settled."""
        if self.stopping:
            await self._settler.requeue(delivery)
            return
        try:
            await self._process(queue, delivery)
        except StoreError:
            # The store is down: hand the message back, after a pause so that a fleet of
            # workers does not spin on redeliveries while it recovers.
            log.exception("job store failed; delivery requeued in %gs", STORE_PAUSE)
            await asyncio.sleep(STORE_PAUSE)
            await self._settler.requeue(delivery)
        except Exception:
            log.exception("unexpected error handling a delivery; rejected to the DLQ")
            await self._settler.reject(delivery)

    async def _process(self, queue: str, delivery: Delivery) -> None:
        envelope = await self._arrive(queue, delivery)
        if envelope is None:
            return
        handler = self._registry.get(envelope.type)
        job = await self._claimer.claim(
            queue,
            envelope,
            delivery.attempt,
            redelivered=delivery.redelivered,
            handler=handler,
        )
        if job is None:
            await self._not_started(delivery, envelope)
            return
        self._events.emit_nowait(EventName.STARTED, job)
        if self._stack.claims:
            await self._stack.claimed(job)
        attempt = await self._runner.run(job, handler)
        settlement = await self._settle(delivery, job, attempt)
        if self._stack.settles:
            await self._stack.settled(settlement)
        if settlement.stored is not None:
            await self._after(settlement.stored)

    async def _arrive(self, queue: str, delivery: Delivery) -> Envelope | None:
        """The delivery's envelope, or None when it was settled here: unreadable (to the
        DLQ), or still early (on to the next delay tier, unless its job has ended)."""
        try:
            envelope = decode(
                delivery.body,
                delivery.content_type,
                message_id=delivery.message_id,
                default_queue=queue,
                default_priority=delivery.priority,
            )
        except MalformedMessage as exc:
            await self._settler.malformed(queue, delivery, exc.reason)
            return None
        not_before = delivery.not_before_ms
        if not_before is not None and epoch_ms() < not_before:
            if await self._ended(envelope):  # cancelled while it waited: stop travelling
                await self._settler.skip(delivery)
            else:
                await self._settler.hop(queue, delivery, not_before)
            return None
        return envelope

    async def _settle(self, delivery: Delivery, job: Job, attempt: Attempt) -> Settlement:
        """Decide what the attempt means and carry it out. While the store cannot be
        written, keep the delivery and try again: the handler's work is done, and handing
        the message back would run it again and charge the job an attempt it did not lose.
        Once the worker is stopping, hand it back."""
        decision = decide(
            job,
            attempt.outcome,
            attempt.reported,
            max_result=self._settler.max_result,
            now=utcnow(),
        )
        while True:
            try:
                stored = await self._settler.carry_out(delivery, job, decision)
                return Settlement(job, attempt.outcome, decision, stored)
            except StoreError:
                if self.stopping:
                    log.exception("job %s: store write failed; delivery requeued", job.id)
                    await self._settler.requeue(delivery)
                    return Settlement(job, attempt.outcome, decision, None)
                log.exception(
                    "job %s: store write failed; trying again in %gs", job.id, STORE_PAUSE
                )
                await asyncio.sleep(STORE_PAUSE)

    async def _after(self, ended: Job) -> None:
        event = event_for(ended.state)
        if event is not None:
            self._events.emit_nowait(event, ended)
        if ended.state in TERMINAL_STATES:
            try:
                await self._producer.release_dependents(ended)
            except LeveretError:  # the delivery is settled; a dependent left pending is logged
                log.exception("job %s: could not release its dependents", ended.id)

    async def _not_started(self, delivery: Delivery, envelope: Envelope) -> None:
        """Settle a delivery that has nothing to run. A redelivered message of a job the store
        has failed or dead-lettered goes to the DLQ once more: its worker wrote that end, then
        died or lost its channel before the DLQ copy was confirmed, and acking it here would
        leave the job in no DLQ at all. (If the copy did arrive, the DLQ now holds two.)"""
        assert envelope.id is not None
        if delivery.redelivered:
            current = await self._store.get(envelope.id)
            if current is not None and current.state in DLQ_STATES:
                log.info(
                    "job %s is %s but its message came back; sending it to the DLQ again",
                    current.id,
                    current.state,
                )
                await self._settler.dead_letter_again(delivery, current)
                return
        await self._settler.skip(delivery)

    async def _ended(self, envelope: Envelope) -> bool:
        assert envelope.id is not None
        current = await self._store.get(envelope.id)
        return current is not None and current.state in TERMINAL_STATES
