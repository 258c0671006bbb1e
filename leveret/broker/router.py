"""Where a job's message goes: its work queue, a delay tier, or its DLQ."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from leveret.broker.declare import declare
from leveret.broker.hooks import Publish, PublishHook, PublishReason
from leveret.broker.messages import epoch_ms
from leveret.broker.publisher import RETRY_PAUSE, Publisher
from leveret.jobs.envelope import ATTEMPT_HEADER, REASON_HEADER, int_header
from leveret.jobs.errors import ConnectionDown, PublishTimeout
from leveret.jobs.model import Job
from leveret.topology import (
    TIER_HEADER,
    Names,
    QueueOptions,
    TopologySpec,
    queue_topology,
    tier_for,
)

log = logging.getLogger(__name__)


class JobRouter:
    """Sends job messages where they belong, declaring a queue's topology on first use.
    Every job message goes out through here, past the publish hooks."""

    def __init__(
        self,
        publisher: Publisher,
        connection: AbstractRobustConnection,
        names: Names,
        options: QueueOptions,
        hooks: Sequence[PublishHook] = (),
    ) -> None:
        self.publisher = publisher
        self._hooks = tuple(hooks)
        self.names = names
        self._connection = connection
        self._options = options
        self._declared: set[str] = set()
        self._declare_lock = asyncio.Lock()

    async def ensure_queue(self, queue: str) -> None:
        """Declare `queue`'s work queue and DLQ unless this process already has;
        PublishTimeout when the broker does not answer, or the connection does not come
        back, in time."""
        if queue in self._declared:
            return
        # Bounded like a publish, waiting for the lock included: a stalled broker must not
        # hang the caller for ever.
        try:
            async with asyncio.timeout(self.publisher.timeout), self._declare_lock:
                if queue not in self._declared:
                    await self._declare(queue_topology(self.names, queue, self._options))
                    self._declared.add(queue)
        except TimeoutError:
            raise PublishTimeout(self.publisher.timeout) from None

    async def _declare(self, spec: TopologySpec) -> None:
        while True:
            try:
                await declare(self._connection, spec)
                return
            except ConnectionDown:
                # Reconnecting (a reconnect also makes us declare again): wait for it, as a
                # publish does, rather than fail a submit that would succeed a second later.
                await asyncio.sleep(RETRY_PAUSE)
                await self._connection.ready()

    def forget_queues(self) -> None:
        """Declare again on next use (after a reconnect the broker may have lost them)."""
        self._declared.clear()

    async def send(
        self,
        queue: str,
        message: aio_pika.Message,
        not_before_ms: int | None,
        *,
        reason: PublishReason,
        job: Job | None = None,
    ) -> None:
        """Send to `queue`'s work queue now, or through a delay tier until `not_before_ms`.

        A delayed message keeps the queue's name as routing key, so when its tier's TTL ends
        the jobs exchange routes it back to that work queue and no other.
        """
        if self._hooks:
            await self._run_hooks(queue, message, reason, job)
        remaining = None if not_before_ms is None else not_before_ms - epoch_ms()
        if remaining is None or remaining <= 0:
            await self.publisher.publish(self.names.jobs_exchange, queue, message)
            return
        headers = dict(message.headers or {})
        headers[TIER_HEADER] = str(tier_for(remaining))
        message.headers = headers
        await self.publisher.publish(self.names.delay_exchange, queue, message)

    async def dead_letter(
        self, queue: str, message: aio_pika.Message, why: str, *, job: Job | None = None
    ) -> None:
        """Send a message to `queue`'s DLQ with `why` in its headers."""
        if self._hooks:
            await self._run_hooks(queue, message, PublishReason.DEAD_LETTER, job)
        headers: dict[str, Any] = dict(message.headers or {})
        headers[REASON_HEADER] = why[:1024]
        headers.pop(TIER_HEADER, None)
        message.headers = headers
        await self.publisher.publish(self.names.dead_letter_exchange, queue, message)

    async def _run_hooks(
        self, queue: str, message: aio_pika.Message, reason: PublishReason, job: Job | None
    ) -> None:
        headers = dict(message.headers or {})
        publish = Publish(
            reason=reason,
            queue=queue,
            job_id=job.id if job is not None else message.message_id,
            job_type=job.type if job is not None else message.type,
            attempt=int_header(headers.get(ATTEMPT_HEADER)) or 1,
            headers=headers,
            job=job,
        )
        for hook in self._hooks:
            try:
                await hook.on_publish(publish)
            except Exception:  # a hook is the user's code: it must never lose a job
                log.exception("publish hook %r failed; publishing anyway", hook)
        message.headers = publish.headers
