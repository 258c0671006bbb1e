"""Connections cut or stalled for real, through a TCP proxy in front of RabbitMQ."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import aio_pika
import pytest
from yarl import URL

from leveret.broker import BrokerSession, Producer, queue_depth
from leveret.jobs import JobState, PublishTimeout, Settings
from leveret.jobs.store import JobQuery, SQLiteStore
from leveret.workers import JobContext, Worker
from tests.conditions import eventually
from tests.integration.conftest import running, until_state
from tests.proxy import TcpProxy


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[TcpProxy]:
    url = URL(settings.amqp_url)
    opened = TcpProxy(url.host or "127.0.0.1", url.port or 5672)
    await opened.start()
    yield opened
    await opened.close()


def through(settings: Settings, proxy: TcpProxy) -> Settings:
    url = URL(settings.amqp_url).with_host("127.0.0.1").with_port(proxy.port)
    return dataclasses.replace(settings, amqp_url=str(url))


async def test_worker_keeps_consuming_after_its_connections_are_cut(
    settings: Settings, store: SQLiteStore, producer: Producer, proxy: TcpProxy
) -> None:
    ran: list[str] = []
    worker = Worker()

    @worker.handler("note")
    async def note(ctx: JobContext, payload: str) -> str:
        ran.append(payload)
        return payload

    async with running(worker, through(settings, proxy)):
        before = await producer.submit("note", "before")
        await until_state(store, before.id, JobState.COMPLETED)
        connections = proxy.connections
        proxy.cut()
        after = await producer.submit("note", "after")
        done = await until_state(store, after.id, JobState.COMPLETED, timeout=30)

    assert proxy.connections > connections  # it really reconnected
    assert done.worker == (await store.get(before.id)).worker  # type: ignore[union-attr]
    assert ran == ["before", "after"]


async def test_publish_to_a_stalled_broker_times_out(settings: Settings, proxy: TcpProxy) -> None:
    stalled = dataclasses.replace(through(settings, proxy), publish_timeout=0.5)
    async with BrokerSession.open(stalled, name="leveret-tests") as session:
        await session.router.ensure_queue("default")
        proxy.stall()
        message = aio_pika.Message(b"{}", content_type="application/json")
        with pytest.raises(PublishTimeout):
            await session.publisher.publish(session.names.jobs_exchange, "default", message)
        proxy.resume()


async def test_worker_whose_queue_is_deleted_under_it_stops_with_consumer_lost(
    settings: Settings, session: BrokerSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leveret.cli.demo import worker
    from leveret.jobs import ConsumerLost

    # Check often, so that the test takes a second rather than fifteen.
    monkeypatch.setattr("leveret.workers.runtime.CONSUMER_CHECK_INTERVAL", 0.1)
    run = asyncio.create_task(worker.run(settings))
    await worker.wait_ready()
    channel = await session.consuming.channel()
    await channel.queue_delete(session.names.work_queue("default"))
    await channel.close()

    with pytest.raises(ConsumerLost) as raised:
        await asyncio.wait_for(run, 20)
    assert raised.value.queue == "default"


async def test_a_submit_the_broker_never_confirmed_is_void_even_if_it_arrives_late(
    settings: Settings, store: SQLiteStore, proxy: TcpProxy
) -> None:
    ran: list[str] = []
    worker = Worker()

    @worker.handler("note")
    async def note(ctx: JobContext, payload: str) -> str:
        ran.append(payload)
        return payload

    stalled = dataclasses.replace(through(settings, proxy), publish_timeout=0.5)
    async with BrokerSession.open(stalled, name="leveret-tests") as session:
        producer = Producer(store, session)
        await session.router.ensure_queue("default")
        proxy.stall()
        with pytest.raises(PublishTimeout):
            await producer.submit("note", "late", idempotency_key="order-1")
        proxy.resume()  # the stalled publish now reaches the queue after all
        page = await store.list(JobQuery())
        (void,) = page.jobs
        assert void.state is JobState.CANCELLED
        assert void.idempotency_key is None  # freed: the caller's retry creates a new job
        assert "not accepted" in (void.last_error or "")
        async with running(worker, settings):
            again = await producer.submit("note", "again", idempotency_key="order-1")
            await until_state(store, again.id, JobState.COMPLETED)
            await eventually(lambda: depth_of(session, "default"), lambda n: n == 0)

    assert again.id != void.id
    assert ran == ["again"]  # the late message was dropped, not run
    assert (await store.get(void.id)).state is JobState.CANCELLED  # type: ignore[union-attr]


async def depth_of(session: BrokerSession, queue: str) -> int:
    ready, _ = await queue_depth(session.consuming, session.names.work_queue(queue))
    return ready
