"""What the envelope fuzz tests share: the property every decode must hold (carried or
refused with a reason), the generators, and hand-built msgpack."""

from __future__ import annotations

import os
import re
import string
from datetime import UTC
from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from leveret.jobs.envelope import JSON, MSGPACK, Envelope, decode, encode
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
# The name rules, applied to the whole string with fullmatch: an oracle of their own, not
# leveret.jobs.rules' patterns, which are what is under test.
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
    # Compared as bytes: a payload may hold NaN, which is never equal to itself.
    stored = encode(envelope)
    assert encode(decode(stored, MSGPACK)) == stored
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
        doc[name] = draw(values)  # unknown fields: ignored, as docs/api.md says for submissions
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
