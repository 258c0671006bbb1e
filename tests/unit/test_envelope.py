"""The wire envelope and its codec: what travels through RabbitMQ for each job."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leveret.jobs.backoff import Backoff, BackoffStrategy
from leveret.jobs.envelope import JSON, MSGPACK, Envelope, decode, encode
from leveret.jobs.errors import MalformedMessage
from leveret.jobs.model import SCHEMA_VERSION, Job, new_job_id
from leveret.jobs.rules import DEFAULT_QUEUE, TAG_KEY_PATTERN
from leveret.jobs.states import JobState

JOB_ID = "0190b1c2-7d3e-7f00-8a1b-2c3d4e5f6a7b"
OTHER_ID = "0190b1c2-7d3e-7f00-8a1b-000000000000"
ENVELOPE_FIELDS = (
    "id",
    "type",
    "queue",
    "payload",
    "priority",
    "max_attempts",
    "backoff",
    "timeout",
    "idempotency_key",
    "correlation_id",
    "tags",
    "scheduled_at",
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def json_like(*, allow_infinity: bool = True) -> st.SearchStrategy[Any]:
    """Payloads as producers send them: JSON values, nested."""
    scalars = (
        st.none()
        | st.booleans()
        | INT64
        | st.floats(allow_nan=False, allow_infinity=allow_infinity)
        | st.text()
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
        ),
        max_leaves=25,
    )


job_types = st.from_regex(r"\A[A-Za-z0-9_.:-]{1,128}\Z")
queue_names = st.from_regex(r"\A[a-z0-9_.-]{1,64}\Z")


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    return Job(
        id=new_job_id(),
        type=draw(job_types),
        state=draw(st.sampled_from(JobState)),
        queue=draw(queue_names),
        priority=draw(st.integers(min_value=0, max_value=4)),
        payload=draw(json_like()),
        max_attempts=draw(st.none() | st.integers(min_value=1, max_value=100)),
        backoff=draw(
            st.none()
            | st.builds(
                Backoff,
                strategy=st.sampled_from(BackoffStrategy),
                initial=st.floats(min_value=0, max_value=1e6),
                max=st.floats(min_value=0, max_value=1e6),
                multiplier=st.floats(min_value=1, max_value=100),
                jitter=st.booleans(),
            )
        ),
        timeout=draw(st.none() | st.floats(min_value=0.001, max_value=1e6)),
        scheduled_at=draw(st.none() | st.datetimes(timezones=st.just(UTC))),
        idempotency_key=draw(st.none() | st.text(min_size=1)),
        correlation_id=draw(st.none() | st.text(min_size=1)),
        tags=draw(
            st.dictionaries(
                st.from_regex(TAG_KEY_PATTERN, fullmatch=True),
                st.text(max_size=256),
                max_size=4,
            )
        ),
    )


def raises_malformed(body: bytes, content_type: str | None = None, **kwargs: Any) -> str:
    """The reason decode gives for refusing `body`."""
    with pytest.raises(MalformedMessage) as caught:
        decode(body, content_type, **kwargs)
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


def msgpack(document: object) -> bytes:
    return msgspec.msgpack.encode(document)


def json(document: object) -> bytes:
    return msgspec.json.encode(document)


# --- round trip --------------------------------------------------------------------------


@given(jobs())
def test_round_trip_keeps_every_field(job: Job) -> None:
    envelope = Envelope.of(job)
    decoded = decode(encode(envelope), MSGPACK)
    for name in ENVELOPE_FIELDS:
        assert getattr(decoded, name) == getattr(job, name), name
    assert decoded == envelope
    assert decoded.v == SCHEMA_VERSION


@given(json_like(allow_infinity=False))
def test_json_payloads_round_trip(payload: Any) -> None:
    body = json({"type": "report.build", "payload": payload})
    assert decode(body, JSON).payload == payload


def test_body_is_a_msgpack_map_any_client_can_read() -> None:
    job = Job(id=JOB_ID, type="email.send", state=JobState.SCHEDULED, payload={"to": "a@b.c"})
    raw = msgspec.msgpack.decode(encode(Envelope.of(job)))
    assert isinstance(raw, dict)
    assert raw["id"] == JOB_ID
    assert raw["type"] == "email.send"
    assert raw["payload"] == {"to": "a@b.c"}


def test_envelope_of_carries_no_store_only_fields() -> None:
    job = Job(
        id=JOB_ID,
        type="t",
        state=JobState.RUNNING,
        result={"secret": 1},
        checkpoint=5,
        last_error="boom",
        worker="w1",
    )
    raw = msgspec.msgpack.decode(encode(Envelope.of(job)))
    assert not {"state", "result", "checkpoint", "last_error", "worker"} & set(raw)


# --- JSON bodies and defaults ------------------------------------------------------------


def test_json_body_needs_only_a_type() -> None:
    envelope = decode(b'{"type": "email.send"}', JSON)
    assert envelope.type == "email.send"
    assert envelope.queue == DEFAULT_QUEUE
    assert envelope.priority == 2
    assert envelope.payload is None
    assert envelope.max_attempts is None  # the handler's default
    assert envelope.backoff is None  # the handler's default
    assert envelope.tags == {}
    assert envelope.v == 1
    assert uuid.UUID(envelope.id or "")


def test_msgpack_body_needs_only_a_type() -> None:
    envelope = decode(msgpack({"type": "email.send"}))
    assert (envelope.type, envelope.queue, envelope.priority) == ("email.send", "default", 2)


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", " application/json "],
)
def test_json_content_type_variants(content_type: str) -> None:
    assert decode(b'{"type": "t"}', content_type).type == "t"


@pytest.mark.parametrize("content_type", [None, "", MSGPACK, "application/x-msgpack"])
def test_msgpack_is_the_default_content_type(content_type: str | None) -> None:
    assert decode(msgpack({"type": "t"}), content_type).type == "t"


def test_json_body_with_every_field() -> None:
    body = json(
        {
            "id": JOB_ID,
            "type": "video:encode",
            "queue": "media",
            "payload": {"file": "a.mp4", "sizes": [480, 720]},
            "priority": 0,
            "max_attempts": 10,
            "backoff": {"strategy": "linear", "initial": 2, "jitter": False},
            "timeout": 90,
            "idempotency_key": "k-1",
            "correlation_id": "c-1",
            "tags": {"team": "media"},
            "scheduled_at": "2030-01-02T03:04:05Z",
            "unknown_future_field": [1, 2, 3],
        }
    )
    envelope = decode(body, JSON, default_queue="other", default_priority=4)
    assert envelope.id == JOB_ID
    assert envelope.queue == "media"
    assert envelope.priority == 0
    assert envelope.backoff == Backoff(strategy=BackoffStrategy.LINEAR, initial=2, jitter=False)
    assert envelope.timeout == 90.0
    assert envelope.tags == {"team": "media"}
    assert envelope.scheduled_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_queue_and_priority_defaults_are_filled_in() -> None:
    envelope = decode(msgpack({"type": "t"}), default_queue="emails", default_priority=0)
    assert (envelope.queue, envelope.priority) == ("emails", 0)


def test_defaults_do_not_override_the_body() -> None:
    body = msgpack({"type": "t", "queue": "bulk", "priority": 4})
    envelope = decode(body, default_queue="emails", default_priority=0)
    assert (envelope.queue, envelope.priority) == ("bulk", 4)


def test_priority_zero_in_the_body_is_kept() -> None:
    assert decode(msgpack({"type": "t", "priority": 0}), default_priority=3).priority == 0


# --- ids ---------------------------------------------------------------------------------


def test_id_comes_from_the_body_first() -> None:
    envelope = decode(msgpack({"type": "t", "id": JOB_ID}), message_id=OTHER_ID)
    assert envelope.id == JOB_ID


def test_id_falls_back_to_a_uuid_message_id() -> None:
    assert decode(msgpack({"type": "t"}), message_id=OTHER_ID).id == OTHER_ID


def test_upper_case_ids_are_stored_in_canonical_lower_case() -> None:
    assert decode(msgpack({"type": "t", "id": JOB_ID.upper()})).id == JOB_ID.lower()
    assert decode(msgpack({"type": "t"}), message_id=OTHER_ID.upper()).id == OTHER_ID.lower()


@pytest.mark.parametrize("message_id", [None, "", "order-42", "12345", "not-a-uuid-at-all"])
def test_id_is_made_fresh_without_a_uuid(message_id: str | None) -> None:
    first = decode(msgpack({"type": "t"}), message_id=message_id).id
    second = decode(msgpack({"type": "t"}), message_id=message_id).id
    assert first is not None
    assert second is not None
    assert first != second
    parsed = uuid.UUID(first)
    assert str(parsed) == first
    assert parsed.version == 7


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "42",
        "order-42",
        "0190b1c27d3e7f008a1b2c3d4e5f6a7b",  # hex without hyphens
        "{0190b1c2-7d3e-7f00-8a1b-2c3d4e5f6a7b}",
        "urn:uuid:0190b1c2-7d3e-7f00-8a1b-2c3d4e5f6a7b",
        # 36 characters that uuid.UUID() also accepts, but are no UUID string
        "urn:0190b1c27d3e7f008a1b2c3d4e5f6a7b",
        "{{0190b1c27d3e7f008a1b2c3d4e5f6a7b}}",
        "----0190b1c27d3e7f008a1b2c3d4e5f6a7b",
        "0190b1c2-7d3e-7f00-8a1b-2c3d4e5f6a7g",
        "x" * 500,
    ],
)
def test_non_uuid_body_id_is_malformed(bad_id: str) -> None:
    reason = raises_malformed(msgpack({"type": "t", "id": bad_id}), message_id=OTHER_ID)
    assert "id" in reason
    assert "UUID" in reason
    assert len(reason) < 200


@pytest.mark.parametrize(
    "message_id",
    ["urn:0190b1c27d3e7f008a1b2c3d4e5f6a7b", "{{0190b1c27d3e7f008a1b2c3d4e5f6a7b}}"],
)
def test_non_canonical_message_id_is_not_used(message_id: str) -> None:
    job_id = decode(msgpack({"type": "t"}), message_id=message_id).id
    assert job_id != message_id
    assert str(uuid.UUID(job_id or "")) == job_id


def test_body_id_of_the_wrong_type_is_malformed() -> None:
    assert "$.id" in raises_malformed(msgpack({"type": "t", "id": 42}))
