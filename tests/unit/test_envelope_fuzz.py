"""Fuzz of what a worker does with a delivery before any handler runs: the envelope decoder
(jobs.envelope.decode) fed the way the worker pipeline (workers/pipeline.py) feeds it, and
the header reading beside it.

The property, for every input: decoding returns an envelope the engine can carry (its
fields within their patterns and ranges, storable as msgpack, showable as JSON by the API),
or raises MalformedMessage with a short reason that says what is wrong. Never any other
exception: anything else skips the DLQ reason and, worse, the store write that follows.

tests/unit/test_envelope.py has the worked examples; this file has the generators.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leveret.jobs.envelope import JSON, MSGPACK, Envelope, encode
from leveret.jobs.errors import MalformedMessage
from tests.unit.envelope_fuzzing import (
    CONTENT_TYPES,
    FUZZ,
    assert_carried_or_refused,
    delivered,
    documents,
    good_envelopes,
    json_values,
    mp_map,
    mp_str,
    msgpack_values,
)

# --- random and truncated bodies ---------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2000), CONTENT_TYPES)
def test_random_bytes_are_carried_or_refused(body: bytes, content_type: str | None) -> None:
    assert_carried_or_refused(delivered(body, content_type))


@FUZZ
@given(good_envelopes(), st.data())
def test_truncated_msgpack_is_refused_as_undecodable(
    envelope: Envelope, data: st.DataObject
) -> None:
    body = encode(envelope)
    cut = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    outcome = delivered(body[:cut], MSGPACK)
    assert isinstance(outcome, MalformedMessage)
    assert outcome.reason.startswith("undecodable application/msgpack body")


@FUZZ
@given(good_envelopes(), st.data())
def test_truncated_json_is_refused_as_undecodable(envelope: Envelope, data: st.DataObject) -> None:
    body = msgspec.json.encode(envelope)
    cut = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    outcome = delivered(body[:cut], JSON)
    assert isinstance(outcome, MalformedMessage)
    assert outcome.reason.startswith("undecodable application/json body")


@FUZZ
@given(good_envelopes(), st.sampled_from([MSGPACK, JSON]))
def test_well_formed_envelopes_are_carried(envelope: Envelope, content_type: str) -> None:
    """The generators above do reach the accepting side: not every input is refused."""
    body = encode(envelope) if content_type == MSGPACK else msgspec.json.encode(envelope)
    outcome = delivered(body, content_type)
    assert isinstance(outcome, Envelope)
    assert outcome.type == envelope.type
    assert_carried_or_refused(outcome)


# --- valid msgpack and JSON of the wrong shape -------------------------------------------


@FUZZ
@given(
    msgpack_values | documents(msgpack_values), st.integers(min_value=0, max_value=255) | st.none()
)
def test_any_msgpack_value_is_carried_or_refused(document: Any, amqp_priority: int | None) -> None:
    assert_carried_or_refused(
        delivered(msgspec.msgpack.encode(document), MSGPACK, amqp_priority=amqp_priority)
    )


@FUZZ
@given(msgpack_values)
def test_any_msgpack_payload_is_carried_or_refused(payload: Any) -> None:
    """Payloads only msgpack has (extension types, non-string map keys, raw bytes, times)
    under a good type: what the API cannot show as JSON must not be accepted."""
    body = msgspec.msgpack.encode({"type": "echo", "payload": payload})
    assert_carried_or_refused(delivered(body, MSGPACK))


@pytest.mark.parametrize(
    "payload",
    [msgspec.msgpack.Ext(5, b"abc"), {(1, 2): "array key"}, {None: "nil key"}, [{True: 1}]],
    ids=["ext", "array-key", "nil-key", "bool-key"],
)
def test_a_payload_json_cannot_show_is_refused(payload: Any) -> None:
    """The worked examples behind the property above: GET /api/v1/jobs/{id} would answer
    500 for a job carrying one of these."""
    outcome = delivered(msgspec.msgpack.encode({"type": "echo", "payload": payload}), MSGPACK)
    assert isinstance(outcome, MalformedMessage)
    assert "payload" in outcome.reason


@FUZZ
@given(json_values | documents(json_values))
def test_any_json_value_is_carried_or_refused(document: Any) -> None:
    assert_carried_or_refused(delivered(msgspec.json.encode(document), JSON))


@FUZZ
@given(documents(msgpack_values), documents(json_values))
def test_bodies_under_the_other_content_type_are_carried_or_refused(
    as_msgpack: Any, as_json: Any
) -> None:
    """A JSON body labelled msgpack and the other way round (a misconfigured producer)."""
    assert_carried_or_refused(delivered(msgspec.json.encode(as_json), MSGPACK))
    assert_carried_or_refused(delivered(msgspec.msgpack.encode(as_msgpack), JSON))


@FUZZ
@given(st.binary(max_size=40), st.binary(max_size=40))
def test_invalid_utf8_strings_in_msgpack_are_refused(
    type_bytes: bytes, payload_bytes: bytes
) -> None:
    body = mp_map(
        [(mp_str(b"type"), mp_str(type_bytes)), (mp_str(b"payload"), mp_str(payload_bytes))]
    )
    assert_carried_or_refused(delivered(body, MSGPACK))


@FUZZ
@given(st.binary(max_size=40))
def test_invalid_utf8_in_json_is_refused(raw: bytes) -> None:
    raw = raw.replace(b'"', b"").replace(b"\\", b"")
    assert_carried_or_refused(delivered(b'{"type": "t", "payload": "' + raw + b'"}', JSON))
    assert_carried_or_refused(delivered(b'{"type": "' + raw + b'"}', JSON))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (mp_map([(mp_str(b"type"), mp_str(b"\xff\xfe"))]), MSGPACK),
        (mp_map([(mp_str(b"type"), mp_str(b"t")), (mp_str(b"payload"), mp_str(b"\xc3"))]), MSGPACK),
        (
            mp_map(
                [
                    (mp_str(b"type"), mp_str(b"t")),
                    (mp_str(b"payload"), mp_map([(mp_str(b"k\xe9"), mp_str(b"v"))])),
                ]
            ),
            MSGPACK,
        ),
        (b'{"type": "t", "payload": "\xff"}', JSON),
        (b'{"type": "\xed\xa0\x80"}', JSON),  # an encoded lone surrogate
    ],
    ids=[
        "msgpack-type",
        "msgpack-payload",
        "msgpack-payload-key",
        "json-payload",
        "json-surrogate",
    ],
)
def test_invalid_utf8_is_malformed_not_a_unicode_error(body: bytes, content_type: str) -> None:
    """The worked examples behind the two properties above."""
    outcome = delivered(body, content_type)
    assert isinstance(outcome, MalformedMessage)
    assert outcome.reason.startswith("undecodable")
