"""Fuzz of the envelope decoder with hostile names, huge fields, and the headers and
properties read beside the body (the property: see test_envelope_fuzz.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leveret.jobs.envelope import JSON, MSGPACK, Envelope, int_header
from leveret.jobs.errors import MalformedMessage
from leveret.jobs.priority import from_amqp
from tests.unit.envelope_fuzzing import (
    _QUEUE,
    _TYPE,
    FUZZ,
    HOSTILE_NAMES,
    assert_carried_or_refused,
    delivered,
)

# --- hostile names -----------------------------------------------------------------------


@FUZZ
@given(HOSTILE_NAMES, HOSTILE_NAMES, st.sampled_from([MSGPACK, JSON]))
def test_hostile_type_and_queue_names_are_refused_unless_they_match(
    type_name: str, queue_name: str, content_type: str
) -> None:
    document = {"type": type_name, "queue": queue_name}
    body = (
        msgspec.json.encode(document) if content_type == JSON else msgspec.msgpack.encode(document)
    )
    outcome = delivered(body, content_type)
    legal = bool(_TYPE.fullmatch(type_name)) and bool(_QUEUE.fullmatch(queue_name))
    if legal:
        assert isinstance(outcome, Envelope)
        assert (outcome.type, outcome.queue) == (type_name, queue_name)
    else:
        assert isinstance(outcome, MalformedMessage)
        field = "$.type" if not _TYPE.fullmatch(type_name) else "$.queue"
        assert field in outcome.reason
        assert len(outcome.reason) < 300  # names the field, does not echo the name


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"type": "echo\n"}, "$.type"),
        ({"type": "echo", "queue": "default\n"}, "$.queue"),
        ({"type": "echo", "tags": {"team\n": "a"}}, "$.tags"),
    ],
    ids=["type", "queue", "tag-key"],
)
def test_a_name_with_a_trailing_newline_is_refused(document: dict[str, Any], field: str) -> None:
    """A pattern anchored with `$` lets "echo\n" through in Python: the queue would be
    declared as "<ns>.q.default\n" (or refused by the AMQP library after the job is stored)."""
    outcome = delivered(msgspec.msgpack.encode(document), MSGPACK)
    assert isinstance(outcome, MalformedMessage)
    assert field in outcome.reason


# --- huge fields -------------------------------------------------------------------------

MiB = 1 << 20


@pytest.mark.parametrize("content_type", [MSGPACK, JSON])
@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"type": "t" * (2 * MiB)}, "$.type"),
        ({"type": "t", "queue": "q" * (2 * MiB)}, "$.queue"),
        ({"type": "t", "id": "0" * (2 * MiB)}, "id"),
        ({"type": "t", "tags": {"k": "v" * (2 * MiB)}}, "$.tags"),
        ({"type": "t", "tags": {f"k{i}": "v" for i in range(10_000)}}, "$.tags"),
    ],
    ids=["type", "queue", "id", "tag-value", "many-tags"],
)
def test_huge_fields_are_refused_without_being_echoed(
    document: dict[str, Any], field: str, content_type: str
) -> None:
    body = (
        msgspec.json.encode(document) if content_type == JSON else msgspec.msgpack.encode(document)
    )
    outcome = delivered(body, content_type)
    assert isinstance(outcome, MalformedMessage)
    assert field in outcome.reason
    assert len(outcome.reason) < 300


@pytest.mark.parametrize("content_type", [MSGPACK, JSON])
def test_a_multi_megabyte_payload_is_carried_whole(content_type: str) -> None:
    """The decoder sets no size limit of its own (the producer's max_payload does): a big
    payload arrives intact, not cut or refused."""
    payload = {"blob": "x" * (3 * MiB), "list": list(range(10_000))}
    document = {"type": "t", "payload": payload}
    body = (
        msgspec.json.encode(document) if content_type == JSON else msgspec.msgpack.encode(document)
    )
    outcome = delivered(body, content_type)
    assert isinstance(outcome, Envelope)
    assert outcome.payload == payload


@FUZZ
@given(st.integers(min_value=1, max_value=3000), st.sampled_from([MSGPACK, JSON]))
def test_nesting_of_any_depth_is_carried_or_refused(depth: int, content_type: str) -> None:
    if content_type == JSON:
        body = b'{"type": "t", "payload": ' + b"[" * depth + b"]" * depth + b"}"
    else:
        body = b"\x82\xa4type\xa1t\xa7payload" + b"\x91" * depth + b"\xc0"
    assert_carried_or_refused(delivered(body, content_type))


@pytest.mark.parametrize("big", [2**64, -(2**63) - 1, 10**40], ids=["2^64", "-2^63-1", "1e40"])
def test_an_integer_msgpack_cannot_carry_is_refused(big: int) -> None:
    """JSON integers have no size limit; the store (msgpack) takes 64 bits. A JSON envelope
    with a bigger one decodes, then fails every store write: it must be refused up front."""
    outcome = delivered(b'{"type": "t", "payload": {"n": %d}}' % big, JSON)
    assert isinstance(outcome, MalformedMessage)
    assert "payload" in outcome.reason


# --- the headers and properties read beside the body -------------------------------------


@FUZZ
@given(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=50)
    | st.binary(max_size=50)
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
    | st.text(alphabet="0123456789", min_size=4000, max_size=6000)
)
def test_attempt_and_not_before_headers_are_read_or_ignored(value: Any) -> None:
    """Any header value a producer can send reads as an int or as absent, never raises."""
    read = int_header(value)
    assert read is None or isinstance(read, int)


@FUZZ
@given(st.none() | st.integers(min_value=-(2**31), max_value=2**31))
def test_any_amqp_priority_maps_to_a_job_priority(amqp_priority: int | None) -> None:
    assert int(from_amqp(amqp_priority)) in range(5)


@FUZZ
@given(st.text(max_size=255) | st.none(), st.sampled_from([MSGPACK, JSON]))
def test_any_message_id_gives_a_canonical_job_id(message_id: str | None, content_type: str) -> None:
    body = (
        msgspec.json.encode({"type": "t"})
        if content_type == JSON
        else msgspec.msgpack.encode({"type": "t"})
    )
    outcome = delivered(body, content_type, message_id=message_id)
    assert isinstance(outcome, Envelope)
    assert_carried_or_refused(outcome)
