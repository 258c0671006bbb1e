"""One message a worker received: what it carries, copies of it, and settling it."""

from __future__ import annotations

import logging
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage, HeadersType

from leveret.broker.messages import build_message, job_headers
from leveret.jobs.envelope import ATTEMPT_HEADER, NOT_BEFORE_HEADER, int_header
from leveret.jobs.model import Job
from leveret.jobs.priority import Priority, from_amqp
from leveret.topology import TIER_HEADER

log = logging.getLogger(__name__)

# What acking on a channel that was replaced after a reconnect raises: its delivery tags are
# dead, and the broker redelivers the message, which the store's conditional writes make
# harmless.
_STALE_DELIVERY = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError)


class Delivery:
    """A message from a work queue. It is settled exactly once: acked, handed back or
    rejected; the worker's settlement code is the only caller of those."""

    __slots__ = ("_message",)

    def __init__(self, message: AbstractIncomingMessage) -> None:
        self._message = message

    @property
    def body(self) -> bytes:
        """The message body, as published."""
        return self._message.body

    @property
    def content_type(self) -> str | None:
        """The body's content type (absent: msgpack)."""
        return self._message.content_type

    @property
    def message_id(self) -> str | None:
        """The `message_id` property: the job id, when a Leveret producer sent it."""
        return self._message.message_id

    @property
    def priority(self) -> Priority:
        """The job priority the AMQP priority property stands for."""
        return from_amqp(self._message.priority)

    @property
    def redelivered(self) -> bool:
        """Whether the broker delivered this message before (to a channel now closed)."""
        return bool(self._message.redelivered)

    @property
    def attempt(self) -> int:
        """The attempt this delivery starts, from its header (1 when absent or unreadable)."""
        return max(1, int_header(self._header(ATTEMPT_HEADER)) or 1)

    @property
    def not_before_ms(self) -> int | None:
        """Epoch ms before which the job may not run, if the message says."""
        return int_header(self._header(NOT_BEFORE_HEADER))

    def _header(self, name: str) -> Any:
        headers = self._message.headers
        return headers.get(name) if headers else None

    def copy(self) -> aio_pika.Message:
        """The same message, headers and all, to publish again."""
        return self._rebuild(dict(self._message.headers or {}))

    def carrying(
        self, job: Job, attempt: int, not_before_ms: int | None = None
    ) -> aio_pika.Message:
        """A message for `job`'s attempt number `attempt`, not to start before
        `not_before_ms` (a retry, or the job's copy in its DLQ): the body as it came (JSON or
        msgpack), the producer's own headers kept (trace context and any of theirs), the
        broker's and ours set afresh."""
        kept = {
            k: v
            for k, v in (self._message.headers or {}).items()
            if not k.startswith("x-") and k != TIER_HEADER
        }
        return self._rebuild(job_headers(attempt, not_before_ms, kept), job=job)

    def _rebuild(self, headers: HeadersType, *, job: Job | None = None) -> aio_pika.Message:
        message = self._message
        return build_message(
            message.body,
            content_type=message.content_type,
            job_id=job.id if job is not None else message.message_id,
            job_type=job.type if job is not None else message.type,
            priority=job.priority if job is not None else int(self.priority),
            headers=headers,
        )

    async def ack(self) -> None:
        """Done with it: the broker forgets the message."""
        try:
            await self._message.ack()
        except _STALE_DELIVERY:
            log.info("could not ack a delivery on a lost channel; it will be redelivered")

    async def requeue(self) -> None:
        """Hand the message back to its queue untouched."""
        try:
            await self._message.nack(requeue=True)
        except _STALE_DELIVERY:
            log.info("could not nack a delivery on a lost channel; it will be redelivered")

    async def reject(self) -> None:
        """Reject the message to its queue's dead-letter exchange (the DLQ), as it is."""
        try:
            await self._message.reject(requeue=False)
        except _STALE_DELIVERY:
            log.info("could not reject a delivery on a lost channel; it will be redelivered")
