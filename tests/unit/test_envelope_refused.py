"""Envelopes a worker must refuse: undecodable, malformed and hostile bodies go to the DLQ
with a reason (the worked examples; test_envelope_fuzz*.py has the generators)."""

from __future__ import annotations

from datetime import UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leveret.jobs.envelope import JSON, MSGPACK, Envelope, decode, encode
from leveret.jobs.errors import MalformedMessage
from tests.unit.test_envelope import (
    ENVELOPE_FIELDS,
    JOB_ID,
    OTHER_ID,
    json,
    json_like,
    msgpack,
    raises_malformed,
)

# --- malformed bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xc1", MSGPACK),
        (b"\xc1\x00\xff garbage", None),
        (b"", MSGPACK),
        (b"", JSON),
        (b"{not json", JSON),
        (b'{"type": "t"', JSON),
        (b'{"type": "t"} trailing', JSON),
        (b"\x82\xa4type", MSGPACK),
    ],
)
def test_undecodable_bodies_are_malformed(body: bytes, content_type: str | None) -> None:
    reason = raises_malformed(body, content_type)
    assert "undecodable" in reason
    assert (content_type or MSGPACK) in reason


@given(st.integers(min_value=1, max_value=200))
def test_truncated_msgpack_is_malformed(cut: int) -> None:
    body = encode(Envelope(id=JOB_ID, type="t", payload={"text": "x" * 100, "n": list(range(20))}))
    assert "truncated" in raises_malformed(body[: max(0, len(body) - cut)], MSGPACK)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({}, "missing required field `type`"),
        ({"payload": 1}, "missing required field `type`"),
        ({"type": 5}, "$.type"),
        ({"type": None}, "$.type"),
        ({"type": "send email"}, "$.type"),
        ({"type": "x" * 200}, "$.type"),
        ({"type": "x" * 129}, "$.type"),
        ({"type": ""}, "$.type"),
        ({"type": "t", "priority": 9}, "$.priority"),
        ({"type": "t", "priority": -1}, "$.priority"),
        ({"type": "t", "priority": "high"}, "$.priority"),
        ({"type": "t", "queue": "Emails"}, "$.queue"),
        ({"type": "t", "queue": "a/b"}, "$.queue"),
        ({"type": "t", "queue": ""}, "$.queue"),
        ({"type": "t", "queue": "q" * 65}, "$.queue"),
        ({"type": "t", "max_attempts": 0}, "$.max_attempts"),
        ({"type": "t", "max_attempts": 101}, "$.max_attempts"),
        ({"type": "t", "backoff": {"multiplier": 0.5}}, "$.backoff.multiplier"),
        ({"type": "t", "backoff": {"initial": -1}}, "$.backoff.initial"),
        ({"type": "t", "tags": {"team": 1}}, "$.tags"),
        ({"type": "t", "tags": ["a"]}, "$.tags"),
        ({"type": "t", "tags": {"a.b": "c"}}, "$.tags"),
        ({"type": "t", "tags": {"$where": "c"}}, "$.tags"),
        ({"type": "t", "scheduled_at": "tomorrow"}, "$.scheduled_at"),
        ([1, 2, 3], "Expected `object`, got `array`"),
        ("just a string", "Expected `object`, got `str`"),
        (None, "Expected `object`, got"),
    ],
)
@pytest.mark.parametrize("content_type", [MSGPACK, JSON])
def test_wrong_fields_are_malformed_and_named(
    document: object, problem: str, content_type: str
) -> None:
    body = json(document) if content_type == JSON else msgpack(document)
    reason = raises_malformed(body, content_type)
    assert reason.startswith("invalid envelope")
    assert problem in reason


def test_an_accepted_type_and_queue_at_their_limits() -> None:
    envelope = decode(msgpack({"type": "A.b:c-d_9" + "x" * 119, "queue": "q" * 64}))
    assert len(envelope.type) == 128
    assert envelope.queue == "q" * 64


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/octet-stream", "json"]
)
def test_unsupported_content_type_is_malformed(content_type: str) -> None:
    reason = raises_malformed(b'{"type": "t"}', content_type)
    assert "unsupported content type" in reason
    assert content_type in reason


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\x82\xa4type\xa1t\xa7payload" + b"\x91" * 100_000 + b"\xc0", MSGPACK),
        (b'{"type": "t", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON),
    ],
)
def test_deeply_nested_payload_is_malformed(body: bytes, content_type: str) -> None:
    assert "too deeply nested" in raises_malformed(body, content_type)


# --- fuzz --------------------------------------------------------------------------------


def decodes_or_is_malformed(body: bytes, content_type: str | None) -> None:
    try:
        envelope = decode(body, content_type, message_id=OTHER_ID)
    except MalformedMessage as exc:
        malformed = exc
    else:
        assert isinstance(envelope, Envelope)
        assert envelope.id is not None
        assert envelope.queue is not None
        assert envelope.priority is not None
        return
    assert malformed.reason


content_types = st.sampled_from([None, MSGPACK, JSON, "text/plain"])


@given(st.binary(max_size=300), content_types)
def test_random_bytes_decode_or_are_malformed(body: bytes, content_type: str | None) -> None:
    decodes_or_is_malformed(body, content_type)


field_values = json_like() | st.binary(max_size=10) | st.datetimes(timezones=st.just(UTC))
documents = st.dictionaries(
    st.sampled_from(["id", *ENVELOPE_FIELDS, "v", "extra"]) | st.text(max_size=5),
    field_values,
    max_size=8,
)


@given(documents | json_like())
def test_random_msgpack_documents_decode_or_are_malformed(document: object) -> None:
    decodes_or_is_malformed(msgpack(document), MSGPACK)


@given(documents.map(lambda d: {"type": "t", **d}) | json_like(allow_infinity=False))
def test_random_json_documents_decode_or_are_malformed(document: object) -> None:
    decodes_or_is_malformed(json(document), JSON)
