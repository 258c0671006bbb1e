"""Building the AMQP message that carries a job (see leveret.jobs.envelope for the format)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import HeadersType

from leveret.jobs.envelope import (
    ATTEMPT_HEADER,
    MSGPACK,
    NOT_BEFORE_HEADER,
    VERSION_HEADER,
    Envelope,
    encode,
)
from leveret.jobs.model import SCHEMA_VERSION
from leveret.jobs.priority import to_amqp
from leveret.jobs.rules import DEFAULT_PRIORITY

OutgoingMessage = aio_pika.Message
"""A message about to be published (what `Delivery` copies and the router sends)."""


def epoch_ms(moment: datetime | None = None) -> int:
    """Milliseconds since the epoch of `moment` (default now)."""
    if moment is None:
        return time.time_ns() // 1_000_000
    return int(moment.timestamp() * 1000)


def job_message(
    envelope: Envelope, *, attempt: int, not_before_ms: int | None = None
) -> aio_pika.Message:
    """The persistent message that carries `envelope` for attempt number `attempt`."""
    return build_message(
        encode(envelope),
        content_type=MSGPACK,
        job_id=envelope.id,
        job_type=envelope.type,
        priority=envelope.priority if envelope.priority is not None else DEFAULT_PRIORITY,
        headers=job_headers(attempt, not_before_ms),
    )


def job_headers(
    attempt: int, not_before_ms: int | None, extra: Mapping[str, Any] | None = None
) -> HeadersType:
    """The x-leveret headers for a delivery of attempt `attempt`."""
    headers: dict[str, Any] = dict(extra or {})
    headers[ATTEMPT_HEADER] = attempt
    headers[VERSION_HEADER] = SCHEMA_VERSION
    if not_before_ms is None:
        headers.pop(NOT_BEFORE_HEADER, None)
    else:
        headers[NOT_BEFORE_HEADER] = not_before_ms
    return headers


def build_message(
    body: bytes,
    *,
    content_type: str | None,
    job_id: str | None,
    job_type: str | None,
    priority: int,
    headers: HeadersType,
) -> aio_pika.Message:
    """A persistent message with Leveret's properties."""
    return aio_pika.Message(
        body,
        content_type=content_type,
        message_id=job_id,
        type=job_type,
        priority=to_amqp(priority),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=time.time(),
        headers=headers,
    )
