"""The wire envelope: what travels through RabbitMQ for each job, and its codec.

A body is a msgpack map (content type application/msgpack, the default) or a JSON object
(application/json) with the fields below; only `type` is required, so that any AMQP client
can produce. Properties and headers carry the rest (see README, "The envelope").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

from leveret.jobs.backoff import Backoff
from leveret.jobs.errors import MalformedMessage
from leveret.jobs.model import Job, new_job_id
from leveret.jobs.rules import (
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    JobType,
    MaxAttempts,
    PriorityValue,
    QueueName,
    Tags,
    TimeoutSeconds,
    is_job_id,
)

MSGPACK: Final = "application/msgpack"
JSON: Final = "application/json"

ATTEMPT_HEADER: Final = "x-leveret-attempt"  # the attempt this delivery starts (1-based)
NOT_BEFORE_HEADER: Final = "x-leveret-not-before"  # epoch ms; earlier deliveries hop on
VERSION_HEADER: Final = "x-leveret-version"
REASON_HEADER: Final = "x-leveret-reason"  # why a message is in the DLQ


class Envelope(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a worker needs to run a job without reading the store first."""

    type: JobType
    id: str | None = None
    queue: QueueName | None = None
    payload: Any = None
    priority: PriorityValue | None = None
    max_attempts: MaxAttempts | None = None  # None: the handler's default
    backoff: Backoff | None = None  # None: the handler's default
    timeout: TimeoutSeconds | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None
    tags: Tags = msgspec.field(default_factory=dict)
    scheduled_at: datetime | None = None
    v: int = 1  # absent means 1: only later versions must say so

    @classmethod
    def of(cls, job: Job) -> Envelope:
        """The envelope that carries `job`."""
        return cls(
            id=job.id,
            type=job.type,
            queue=job.queue,
            payload=job.payload,
            priority=job.priority,
            max_attempts=job.max_attempts,
            backoff=job.backoff,
            timeout=job.timeout,
            idempotency_key=job.idempotency_key,
            correlation_id=job.correlation_id,
            tags=job.tags,
            scheduled_at=job.scheduled_at,
        )


_msgpack_encoder = msgspec.msgpack.Encoder()
_msgpack_decoder = msgspec.msgpack.Decoder(Envelope)
_json_decoder = msgspec.json.Decoder(Envelope)
_json_encoder = msgspec.json.Encoder()


def encode(envelope: Envelope) -> bytes:
    """The msgpack body for `envelope`."""
    return _msgpack_encoder.encode(envelope)


def decode(
    body: bytes,
    content_type: str | None = None,
    *,
    message_id: str | None = None,
    default_queue: str = DEFAULT_QUEUE,
    default_priority: int = DEFAULT_PRIORITY,
) -> Envelope:
    """The envelope in `body`, with `id`, `queue` and `priority` filled in.

    The id is the body's `id`, else the `message_id` property when it is a UUID, else a new
    one. Raises MalformedMessage, with a reason fit for the DLQ, for anything else.
    """
    kind = (content_type or MSGPACK).split(";", 1)[0].strip().lower()
    try:
        if kind == JSON:
            envelope = _json_decoder.decode(body)
        elif kind in (MSGPACK, "application/x-msgpack"):
            envelope = _msgpack_decoder.decode(body)
        else:
            raise MalformedMessage(f"unsupported content type {content_type!r}")
    except msgspec.ValidationError as exc:
        raise MalformedMessage(f"invalid envelope: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedMessage(f"undecodable {kind} body: {exc}") from None
    except RecursionError:
        raise MalformedMessage(f"undecodable {kind} body: too deeply nested") from None
    except UnicodeDecodeError:
        raise MalformedMessage(f"undecodable {kind} body: a string is not valid UTF-8") from None
    _check_payload(envelope.payload, kind)
    # Ids are kept in the canonical lower-case form, so that an API path finds them.
    if envelope.id is not None:
        if not is_job_id(envelope.id):
            raise MalformedMessage(f"invalid envelope: id {envelope.id[:64]!r} is not a UUID")
        envelope.id = envelope.id.lower()
    elif message_id and is_job_id(message_id):
        envelope.id = message_id.lower()
    else:
        envelope.id = new_job_id()
    if envelope.queue is None:
        envelope.queue = default_queue
    if envelope.priority is None:
        envelope.priority = default_priority
    return envelope


def _check_payload(payload: Any, kind: str) -> None:
    """Refuse a payload the engine could not carry: the store and retries encode it as
    msgpack (integers of at most 64 bits), the API shows it as JSON (string or number keys,
    no msgpack extension types). Each body kind can only break the other encoding."""
    try:
        if kind == JSON:
            _msgpack_encoder.encode(payload)
        else:
            _json_encoder.encode(payload)
    except OverflowError:
        raise MalformedMessage("invalid envelope: payload has an integer beyond 64 bits") from None
    except (TypeError, msgspec.EncodeError) as exc:
        reason = f"invalid envelope: payload cannot be shown as JSON: {exc}"
        raise MalformedMessage(reason) from None


def int_header(value: Any) -> int | None:
    """An integer header (attempt, not-before) as any AMQP producer may have sent it: an
    int, or digits as text; None for anything else."""
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
