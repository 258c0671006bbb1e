"""What arrives on a work queue: duplicates, garbage, plain AMQP producers, cancelled jobs."""

from __future__ import annotations

import json
import uuid

import aio_pika
import pytest

from leveret.broker import BrokerSession, Producer, job_message
from leveret.jobs import JobState, Settings, Unroutable
from leveret.jobs.envelope import REASON_HEADER, Envelope
from leveret.jobs.store import SQLiteStore
from leveret.workers import JobContext, Worker
from tests.conditions import eventually
from tests.integration.conftest import depth, job_state, running, until_state


async def _publish_raw(session: BrokerSession, queue: str, message: aio_pika.Message) -> None:
    await session.router.ensure_queue(queue)
    await session.publisher.publish(session.names.jobs_exchange, queue, message)


async def test_duplicate_delivery_runs_the_job_once(
    settings: Settings, store: SQLiteStore, producer: Producer, session: BrokerSession
) -> None:
    runs: list[int] = []
    worker = Worker()

    @worker.handler("count")
    async def count(ctx: JobContext, payload: object) -> None:
        runs.append(ctx.attempt)

    job = await producer.submit("count")
    # The same message again, as a publisher retrying after a lost confirm would send it.
    await _publish_raw(session, "default", job_message(Envelope.of(job), attempt=1))
    await worker.run(settings, burst=True)

    done = await job_state(store, job.id)
    assert runs == [1]
    assert done.state is JobState.COMPLETED
    assert done.attempt == 1
    assert await depth(session, session.names.work_queue("default")) == 0


async def test_duplicate_of_a_finished_job_changes_nothing(
    settings: Settings, store: SQLiteStore, producer: Producer, session: BrokerSession
) -> None:
    from leveret.cli.demo import worker

    job = await producer.submit("echo", "x")
    await worker.run(settings, burst=True)
    first = await job_state(store, job.id)
    await _publish_raw(session, "default", job_message(Envelope.of(job), attempt=1))
    await worker.run(settings, burst=True)

    again = await job_state(store, job.id)
    assert first.state is JobState.COMPLETED
    assert again.updated_at == first.updated_at  # no second transition was written


async def test_garbage_goes_to_the_dlq_with_a_reason_and_the_worker_goes_on(
    settings: Settings, store: SQLiteStore, producer: Producer, session: BrokerSession
) -> None:
    from leveret.cli.demo import worker

    await _publish_raw(session, "default", aio_pika.Message(b"\xc1\x00not msgpack"))
    await _publish_raw(
        session,
        "default",
        aio_pika.Message(b'{"type": 42}', content_type="application/json"),
    )
    after = await producer.submit("echo", "still alive")
    async with running(worker, settings):
        done = await until_state(store, after.id, JobState.COMPLETED)
        dlq = session.names.dead_letter_queue("default")
        await eventually(lambda: depth(session, dlq), lambda n: n == 2, what="2 in the DLQ")

    assert done.result == "still alive"
    channel = await session.consuming.channel()
    queue = await channel.get_queue(session.names.dead_letter_queue("default"))
    reasons = []
    for _ in range(2):
        message = await queue.get(fail=True)
        assert message is not None
        reasons.append(str(message.headers[REASON_HEADER]))
        await message.ack()
    await channel.close()
    assert "undecodable application/msgpack body" in reasons[0]
    assert "$.type" in reasons[1]


async def test_plain_amqp_json_message_is_recorded_and_run(
    settings: Settings, store: SQLiteStore, session: BrokerSession
) -> None:
    from leveret.cli.demo import worker

    job_id = str(uuid.uuid4())
    body = json.dumps({"type": "echo", "payload": {"from": "pika"}}).encode()
    message = aio_pika.Message(body, content_type="application/json", message_id=job_id, priority=3)
    await _publish_raw(session, "default", message)
    async with running(worker, settings):
        done = await eventually(
            lambda: store.get(job_id),
            lambda job: job is not None and job.state is JobState.COMPLETED,
            what="the AMQP-published job to complete",
        )

    assert done is not None
    assert done.result == {"from": "pika"}
    assert done.priority == 1  # AMQP priority 3 is job priority 1 (high)
    assert done.attempt == 1


async def test_cancelled_job_is_dropped_when_its_message_arrives(
    settings: Settings, store: SQLiteStore, producer: Producer, session: BrokerSession
) -> None:
    runs: list[str] = []
    worker = Worker()

    @worker.handler("never")
    async def never(ctx: JobContext, payload: object) -> None:
        runs.append(ctx.id)

    job = await producer.submit("never")
    cancelled = await store.transition(job.id, JobState.CANCELLED)
    assert cancelled is not None
    assert await depth(session, session.names.work_queue("default")) == 1
    await worker.run(settings, burst=True)  # returns once the message has been settled

    assert runs == []
    assert await depth(session, session.names.work_queue("default")) == 0
    assert await depth(session, session.names.dead_letter_queue("default")) == 0
    assert (await job_state(store, job.id)).state is JobState.CANCELLED


async def test_unroutable_publish_raises(session: BrokerSession) -> None:
    message = aio_pika.Message(b"{}", content_type="application/json")
    with pytest.raises(Unroutable) as raised:
        await session.publisher.publish(session.names.jobs_exchange, "no-such-queue", message)
    assert raised.value.routing_key == "no-such-queue"
    # The channel survives a returned message: the next publish goes through.
    await session.router.ensure_queue("default")
    await session.publisher.publish(session.names.jobs_exchange, "default", message)


async def test_publish_to_a_missing_exchange_raises_and_the_channel_recovers(
    session: BrokerSession,
) -> None:
    from leveret.jobs import PublishError

    message = aio_pika.Message(b"{}", content_type="application/json")
    with pytest.raises(PublishError, match="does not exist"):
        await session.publisher.publish("no-such-exchange", "default", message)
    await session.router.ensure_queue("default")
    await session.publisher.publish(session.names.jobs_exchange, "default", message)
    assert await depth(session, session.names.work_queue("default")) == 1
