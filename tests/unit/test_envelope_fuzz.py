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

import os
import re
import string
from datetime import UTC
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leveret.jobs.envelope import JSON, MSGPACK, Envelope, decode, encode, int_header
from leveret.jobs.errors import MalformedMessage
from leveret.jobs.priority import from_amqp
from tests.unit.test_envelope import ENVELOPE_FIELDS

# Bounded so that the whole file runs in seconds; the same examples on every CI run, so that
# a landing never hangs on a rare draw, and fresh ones elsewhere.
FUZZ = settings(
    max_examples=150,
    deadline=None,  # a 2 MiB example on a busy 2-core machine is slow, not wrong
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MESSAGE_ID = "0190b1c2-7d3e-7f00-8a1b-000000000000"
REASON_PREFIXES = ("invalid envelope", "undecodable ", "unsupported content type")
MAX_REASON = 1200  # an AMQP content type (255 bytes, repr'd) is the longest thing echoed
FIELDS = (*ENVELOPE_FIELDS, "v")
_CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# DESIGN.md's name rules, applied to the whole string. (jobs.model's patterns end in `$`,
# which in Python also matches before a trailing newline: they are not the oracle here.)
_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_QUEUE = re.compile(r"[a-z0-9_.-]{1,64}")
_TAG_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def delivered(
    body: bytes,
    content_type: str | None,
    *,
    message_id: str | None = MESSAGE_ID,
    amqp_priority: int | None = None,
    queue: str = "default",
) -> Envelope | MalformedMessage:
    """What the worker gets from a delivery: the envelope, or the MalformedMessage that sends
    it to the DLQ. Any other exception escapes, and fails the test."""
    try:
        return decode(
            body,
            content_type,
            message_id=message_id,
            default_queue=queue,
            default_priority=from_amqp(amqp_priority),
        )
    except MalformedMessage as exc:
        return exc


def assert_carried_or_refused(outcome: Envelope | MalformedMessage) -> None:
    """The property: a usable envelope, or a clear refusal."""
    if isinstance(outcome, MalformedMessage):
        assert outcome.reason == str(outcome)
        assert outcome.reason.startswith(REASON_PREFIXES), outcome.reason
        assert len(outcome.reason) <= MAX_REASON, outcome.reason[:200]
        return
    envelope = outcome
    assert envelope.id is not None
    assert _CANONICAL_ID.fullmatch(envelope.id), envelope.id
    assert _TYPE.fullmatch(envelope.type), envelope.type
    assert envelope.queue is not None
    assert _QUEUE.fullmatch(envelope.queue), envelope.queue
    assert envelope.priority in range(5)
    assert envelope.max_attempts is None or 1 <= envelope.max_attempts <= 100
    assert all(_TAG_KEY.fullmatch(k) and isinstance(v, str) for k, v in envelope.tags.items())
    # The worker stores what it decoded (msgpack) and re-publishes it on retry; the API then
    # shows it as JSON. An envelope that passes decode but fails either is a job that gets
    # stuck half-recorded, or a GET that answers 500.
    again = decode(encode(envelope), MSGPACK)
    assert again == envelope
    msgspec.json.encode(envelope.payload)


# --- strategies --------------------------------------------------------------------------

CONTENT_TYPES = st.sampled_from(
    [None, "", MSGPACK, "application/x-msgpack", JSON, "application/json; charset=utf-8"]
) | st.text(max_size=255)  # an AMQP shortstr: whatever a foreign producer puts there

INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what msgpack can carry
msgpack_scalars = (
    st.none()
    | st.booleans()
    | INT64
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.datetimes(timezones=st.just(UTC))
    | st.builds(msgspec.msgpack.Ext, st.integers(min_value=0, max_value=127), st.binary(max_size=8))
)
msgpack_keys = st.none() | st.booleans() | INT64 | st.floats(allow_nan=False) | st.text(max_size=8)
msgpack_values = st.recursive(
    msgpack_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(msgpack_keys, inner, max_size=4),
    max_leaves=12,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # JSON has no size limit on integers, msgpack has one
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

# Names with AMQP routing characters (# * .), path characters (/ .. %2F), spaces, control
# characters, upper case and non-ASCII: a type or queue must either match its pattern or be
# refused, never reach a queue declaration or the store.
HOSTILE_NAMES = st.sampled_from(
    [
        "#",
        "*",
        "a.#",
        "*.b",
        "a/b",
        "../x",
        "..",
        "%2F",
        "a b",
        "a\x00b",
        "tab\t",
        "new\nline",
        "echo\n",  # `$` in a Python pattern also matches before a final newline
        "default\n",
        "Emails",
        "ümlaut",
        "名前",
        "",
        "q" * 65,
        "t" * 129,
        "amq.gen-x",
        "$where",
    ]
) | st.text(alphabet=string.printable + "üé名\x00", max_size=140)


@st.composite
def documents(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> dict[Any, Any]:
    """A map with some envelope fields (any value), maybe extra ones, maybe a good type."""
    doc: dict[Any, Any] = {}
    if draw(st.booleans()):
        doc["type"] = draw(st.sampled_from(["echo", "report.build", "a:b-c_d"]))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=5, unique=True)):
        doc[name] = draw(values)
    for name in draw(st.lists(st.text(max_size=10), max_size=2)):
        doc[name] = draw(values)  # unknown fields: ignored, as API.md says for submissions
    return doc


@st.composite
def good_envelopes(draw: st.DrawFn) -> Envelope:
    """Envelopes a well-behaved producer sends."""
    return Envelope(
        id=draw(st.none() | st.uuids().map(str)),
        type=draw(st.from_regex(r"\A[A-Za-z0-9_.:-]{1,128}\Z")),
        queue=draw(st.none() | st.from_regex(r"\A[a-z0-9_.-]{1,64}\Z")),
        payload=draw(json_values.filter(lambda v: _fits_msgpack(v))),
        priority=draw(st.none() | st.integers(min_value=0, max_value=4)),
        idempotency_key=draw(st.none() | st.text(min_size=1, max_size=30)),
        tags=draw(
            st.dictionaries(st.from_regex(r"\A[a-z]{1,8}\Z"), st.text(max_size=10), max_size=3)
        ),
    )


def _fits_msgpack(value: Any) -> bool:
    try:
        msgspec.msgpack.encode(value)
    except OverflowError:
        return False
    return True


def mp_str(data: bytes) -> bytes:
    """A msgpack str holding `data` as it is: the encoder would refuse invalid UTF-8, a
    foreign producer's hand-rolled encoder need not."""
    n = len(data)
    if n < 32:
        return bytes([0xA0 | n]) + data
    if n < 256:
        return b"\xd9" + bytes([n]) + data
    if n < 65536:
        return b"\xda" + n.to_bytes(2, "big") + data
    return b"\xdb" + n.to_bytes(4, "big") + data


def mp_map(items: list[tuple[bytes, bytes]]) -> bytes:
    """A msgpack map of already-encoded keys and values (at most 15)."""
    return bytes([0x80 | len(items)]) + b"".join(k + v for k, v in items)


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
