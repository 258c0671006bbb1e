"""Bad input against a real RabbitMQ and a real worker: garbage on the work queue, payloads
and results over their limits or beyond what the store can hold, hostile queue and type
names through the producer and the HTTP gateway. Each case ends in a clear error or in the
DLQ with its reason; nothing is lost, half-stored or declared, and the worker goes on."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from leveret.broker import BrokerSession, Producer
from leveret.gateway.app import create_app
from leveret.jobs import InvalidJob, JobState, Settings
from leveret.jobs.envelope import JSON, MSGPACK, REASON_HEADER, Envelope, encode
from leveret.jobs.store import SQLiteStore
from leveret.workers import JobContext, Worker
from tests.conditions import eventually
from tests.integration.conftest import (
    WorkerProcess,
    depth,
    running,
    until_finished,
    until_state,
)

MiB = 1 << 20


async def publish_raw(session: BrokerSession, message: aio_pika.Message) -> None:
    """Put `message` on the default work queue as any AMQP client could."""
    await session.router.ensure_queue("default")
    await session.publisher.publish(session.names.jobs_exchange, "default", message)


async def drain(
    session: BrokerSession, queue_name: str
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Every message waiting on `queue_name`, taken off it."""
    channel = await session.consuming.channel()
    try:
        queue = await channel.get_queue(queue_name)
        taken = []
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            taken.append(message)
        return taken
    finally:
        await channel.close()


async def queue_exists(session: BrokerSession, name: str) -> bool:
    """Whether RabbitMQ has a queue called `name` (a passive declare, on its own channel)."""
    channel = await session.consuming.channel()
    try:
        await channel.declare_queue(name, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    except ValueError:
        # The AMQP library refuses the name before it is sent: the engine, on the same
        # library, cannot have declared it either.
        await channel.close()
        return False
    await channel.close()
    return True


def msgpack_str(data: bytes) -> bytes:
    """A msgpack str holding `data` as it is, valid UTF-8 or not (fewer than 32 bytes)."""
    assert len(data) < 32
    return bytes([0xA0 | len(data)]) + data


@dataclass(frozen=True)
class Garbage:
    """One bad message and what its DLQ reason must say."""

    name: str
    body: bytes
    content_type: str | None
    reason: str  # a piece of the x-leveret-reason header


def garbage() -> list[Garbage]:
    good = encode(Envelope(type="echo", payload={"text": "x" * 200}))
    return [
        Garbage(
            "random bytes", b"\xc1\x00\xff not msgpack", MSGPACK, "undecodable application/msgpack"
        ),
        Garbage("truncated msgpack", good[:-7], MSGPACK, "undecodable application/msgpack"),
        Garbage("a msgpack list", msgspec.msgpack.encode([1, 2, 3]), MSGPACK, "got `array`"),
        Garbage("a msgpack int", msgspec.msgpack.encode(42), MSGPACK, "got `int`"),
        Garbage(
            "nested maps as the type",
            msgspec.msgpack.encode({"type": {"deep": {"deeper": [1]}}}),
            MSGPACK,
            "$.type",
        ),
        Garbage("no type", msgspec.msgpack.encode({"payload": "x"}), MSGPACK, "field `type`"),
        Garbage(
            "a wrong field type",
            msgspec.msgpack.encode({"type": "echo", "priority": "high"}),
            MSGPACK,
            "$.priority",
        ),
        Garbage(
            "broken JSON",
            b'{"type": "echo", "payload": [1, 2',
            JSON,
            "undecodable application/json",
        ),
        Garbage("msgpack labelled JSON", good, JSON, "undecodable application/json"),
        Garbage("JSON labelled msgpack", b'{"type": "echo"}', MSGPACK, "invalid envelope"),
        Garbage("a foreign content type", b"type=echo", "text/plain", "unsupported content type"),
        Garbage(
            "invalid UTF-8 in the type",
            b"\x81" + msgpack_str(b"type") + msgpack_str(b"ech\xff"),
            MSGPACK,
            "undecodable application/msgpack",
        ),
        Garbage(
            "invalid UTF-8 in a JSON payload",
            b'{"type": "echo", "payload": "caf\xe9"}',
            JSON,
            "undecodable application/json",
        ),
        Garbage(
            "a hostile type name",
            msgspec.json.encode({"type": "send email/#.*"}),
            JSON,
            "$.type",
        ),
        Garbage(
            "a type with a trailing newline",
            msgspec.json.encode({"type": "echo\n"}),
            JSON,
            "$.type",
        ),
        Garbage("a 129-character type", msgspec.json.encode({"type": "t" * 129}), JSON, "$.type"),
        Garbage(
            "a hostile queue name",
            msgspec.json.encode({"type": "echo", "queue": "a/#"}),
            JSON,
            "$.queue",
        ),
        Garbage(
            "a path as the id",
            msgspec.json.encode({"type": "echo", "id": "../../etc/passwd"}),
            JSON,
            "not a UUID",
        ),
        Garbage(
            "deep nesting",
            b'{"type": "echo", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            JSON,
            "too deeply nested",
        ),
        Garbage("an oversize garbage body", b"\xc1" * (4 * MiB), MSGPACK, "undecodable"),
        # Decodable, but the store (msgpack, 64-bit integers) cannot hold it.
        Garbage(
            "an integer beyond 64 bits",
            b'{"type": "echo", "payload": {"n": 123456789012345678901234567890}}',
            JSON,
            "payload",
        ),
        # Decodable and storable, but the API (JSON) could never show the job.
        Garbage(
            "a msgpack extension payload",
            msgspec.msgpack.encode({"type": "echo", "payload": msgspec.msgpack.Ext(7, b"x")}),
            MSGPACK,
            "payload",
        ),
    ]


@pytest.mark.slow
async def test_garbage_among_good_jobs_goes_to_the_dlq_with_reasons_and_loses_nothing(
    settings: Settings,
    store: SQLiteStore,
    producer: Producer,
    session: BrokerSession,
    worker_processes: list[WorkerProcess],
) -> None:
    """Every kind of bad message, published straight to the work queue between good jobs, is
    moved to the DLQ whole (same body) with a reason saying what is wrong; every good job
    completes; nothing of the bad ones is stored; the worker process stays up and never
    reaches its catch-all (which rejects without a reason)."""
    worker = WorkerProcess(settings, "leveret.cli.demo:worker")
    worker_processes.append(worker)
    bad = {str(uuid.uuid4()): case for case in garbage()}
    good = []
    for index, (message_id, case) in enumerate(bad.items()):
        message = aio_pika.Message(case.body, content_type=case.content_type, message_id=message_id)
        await publish_raw(session, message)
        if index % 2:
            good.append(await producer.submit("echo", {"n": index}))
    good.append(await producer.submit("echo", {"n": "last"}))

    for job in good:
        done = await until_state(store, job.id, JobState.COMPLETED, timeout=60)
        assert done.result == job.payload
    dlq = session.names.dead_letter_queue("default")

    async def settled() -> int:
        """Bad messages either in the DLQ or (wrongly) recorded as jobs."""
        recorded = [await store.get(message_id) for message_id in bad]
        return await depth(session, dlq) + sum(job is not None for job in recorded)

    await eventually(settled, lambda n: n >= len(bad), timeout=30, what="every bad message settled")
    assert await depth(session, session.names.work_queue("default")) == 0
    assert worker.process.poll() is None, "the worker process died"

    letters = {m.message_id: m for m in await drain(session, dlq)}
    problems = []
    for message_id, case in bad.items():
        letter = letters.get(message_id)
        if letter is None:
            job = await store.get(message_id)
            problems.append(f"{case.name}: not in the DLQ; run as a job ({job and job.state})")
            continue
        reason = str((letter.headers or {}).get(REASON_HEADER, "<no reason header>"))
        if case.reason not in reason:
            problems.append(f"{case.name}: {reason[:200]}")
        if letter.body != case.body:
            problems.append(f"{case.name}: the DLQ copy's body differs from what was sent")
    assert not problems, "\n".join(problems)
    assert set(letters) == set(bad)
    for message_id in bad:
        assert await store.get(message_id) is None
    counts = await store.counts()
    assert counts == {"default": {JobState.COMPLETED: len(good)}}
    assert "unexpected error" not in worker.output()


async def test_a_result_over_max_result_fails_the_job_and_stores_no_result(
    settings: Settings, store: SQLiteStore, producer: Producer, session: BrokerSession
) -> None:
    """A handler's result larger than max_result: the job is `failed` (not retried) with
    `result_too_large`, the result is not stored, the job is in the DLQ with that reason; a
    result that fits, from the same handler, completes."""
    limited = dataclasses.replace(settings, max_result=4096)
    worker = Worker()

    @worker.handler("grow", max_attempts=3)
    async def grow(ctx: JobContext, size: int) -> str:
        return "r" * size

    small = await producer.submit("grow", 1000)
    large = await producer.submit("grow", 5000)
    async with running(worker, limited):
        fits = await until_finished(store, small.id)
        over = await until_finished(store, large.id)

    assert fits.state is JobState.COMPLETED
    assert fits.result == "r" * 1000
    assert over.state is JobState.FAILED
    assert over.attempt == 1  # a permanent error: no retry would make it smaller
    assert over.error_category == "result_too_large"
    assert over.result is None
    assert over.last_error is not None
    assert "4096" in over.last_error
    (letter,) = await drain(session, session.names.dead_letter_queue("default"))
    assert letter.message_id == large.id
    assert "over the limit of 4096" in str((letter.headers or {})[REASON_HEADER])


@pytest.mark.parametrize(
    "result",
    [{"n": 2**64}, -(2**70), {(1, 2): "an array as a key"}, msgspec.msgpack.Ext(3, b"x")],
    ids=["int-2^64", "int-minus-2^70", "array-key", "msgpack-ext"],
)
async def test_a_result_the_store_or_api_cannot_hold_fails_the_job_not_the_worker(
    settings: Settings, store: SQLiteStore, producer: Producer, result: Any
) -> None:
    """Results msgpack cannot encode (integers past 64 bits) or JSON cannot show (non-string
    keys, extension types): the job ends `failed` as unserialisable, not stuck `running` with
    its message in the DLQ, and the worker runs the next job."""
    worker = Worker()

    @worker.handler("odd")
    async def odd(ctx: JobContext, payload: object) -> Any:
        return result if payload == "odd" else payload

    bad = await producer.submit("odd", "odd")
    after = await producer.submit("odd", "plain")
    async with running(worker, settings):
        failed = await until_finished(store, bad.id)
        done = await until_finished(store, after.id)

    assert failed.state is JobState.FAILED
    assert failed.error_category == "unserialisable"
    assert failed.result is None
    assert done.state is JobState.COMPLETED
    assert done.result == "plain"


@pytest.mark.parametrize(
    "payload",
    ["p" * (MiB + 1), {"n": 2**64}],
    ids=["over-max_payload", "int-beyond-64-bits"],
)
async def test_a_payload_the_producer_cannot_take_is_refused_before_anything_happens(
    store: SQLiteStore, producer: Producer, session: BrokerSession, payload: Any
) -> None:
    """Submitting from Python straight over AMQP: a payload over max_payload (1 MiB), or one
    the store cannot encode, is an InvalidJob naming `payload`; nothing is stored, no queue
    declared, nothing published."""
    with pytest.raises(InvalidJob) as refused:
        await producer.submit("echo", payload)

    assert refused.value.field == "payload"
    assert await store.counts() == {}
    assert not await queue_exists(session, session.names.work_queue("default"))


# "default\n" and "echo\n": a pattern ending in `$` also matches before a final newline.
HOSTILE_QUEUES = [
    *("a/b", "#", "*", "a.#", "a b", "%2F", "q" * 65, "ümlaut", "Emails", "", "a\x00b"),
    "default\n",
]
HOSTILE_TYPES = ["send email", "a/b", "t" * 129, "", "#", "名前", "x\ny", "echo\n"]


@pytest.mark.parametrize(
    ("field", "value"),
    [*(("queue", q) for q in HOSTILE_QUEUES), *(("type", t) for t in HOSTILE_TYPES)],
    ids=repr,
)
async def test_a_hostile_name_through_the_producer_is_refused_and_nothing_is_declared(
    store: SQLiteStore, producer: Producer, session: BrokerSession, field: str, value: str
) -> None:
    """Queue and type names with AMQP routing or path characters, spaces, upper case,
    non-ASCII, or too long: an InvalidJob naming the field, no job stored, no queue declared
    on RabbitMQ (not the hostile one, not even the default one)."""
    options = {"type": "echo", "queue": "default", field: value}
    with pytest.raises(InvalidJob) as refused:
        await producer.submit(options.pop("type"), {"x": 1}, **options)

    assert refused.value.field == field
    assert await store.counts() == {}
    assert not await queue_exists(session, session.names.work_queue(options["queue"]))
    assert not await queue_exists(session, session.names.work_queue("default"))


@pytest.fixture
async def gateway_http(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    """The gateway app in this process (open API), on the test's namespace and store."""
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("field", "value"),
    [*(("queue", q) for q in HOSTILE_QUEUES), *(("type", t) for t in HOSTILE_TYPES)],
    ids=repr,
)
async def test_a_hostile_name_through_http_is_a_400_naming_the_field(
    gateway_http: AsyncTestClient[Any],
    store: SQLiteStore,
    session: BrokerSession,
    field: str,
    value: str,
) -> None:
    body = {"type": "echo", "payload": {"x": 1}, field: value}
    answer = await gateway_http.post("/api/v1/jobs", json=body)

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["field"] == field
    assert await store.counts() == {}
    if field == "queue":
        assert not await queue_exists(session, session.names.work_queue(value))


async def test_an_integer_beyond_64_bits_over_http_is_a_400_naming_the_payload(
    gateway_http: AsyncTestClient[Any], store: SQLiteStore
) -> None:
    """JSON allows it, the store cannot hold it: a validation error, not a 500."""
    body = b'{"type": "echo", "payload": {"n": 123456789012345678901234567890}}'
    answer = await gateway_http.post(
        "/api/v1/jobs", content=body, headers={"Content-Type": "application/json"}
    )

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["field"] == "payload"
    assert await store.counts() == {}
