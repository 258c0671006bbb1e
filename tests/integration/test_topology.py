"""Declaring the topology: idempotent, mismatches named, quorum queues as a deploy choice."""

from __future__ import annotations

import dataclasses

import aiormq
import pytest

from leveret.broker import BrokerSession, Producer
from leveret.broker.declare import declare
from leveret.jobs import JobState, QueueType, Settings, TopologyMismatch
from leveret.jobs.store import SQLiteStore
from leveret.topology import Names, full_topology
from tests.integration.conftest import running, until_state


async def test_declaring_twice_is_harmless(session: BrokerSession, settings: Settings) -> None:
    spec = full_topology(Names(settings.namespace), ("default",), session.options)
    await declare(session.publishing, spec)
    await declare(session.publishing, spec)


async def test_mismatched_queue_fails_naming_queue_and_argument(
    session: BrokerSession, settings: Settings
) -> None:
    names = Names(settings.namespace)
    channel = await session.publishing.channel()
    await channel.declare_queue(
        names.work_queue("default"),
        durable=True,
        arguments={"x-max-priority": 9, "x-dead-letter-exchange": names.dead_letter_exchange},
    )
    await channel.close()

    with pytest.raises(TopologyMismatch) as raised:
        await session.router.ensure_queue("default")

    assert raised.value.name == names.work_queue("default")
    assert raised.value.argument == "x-max-priority"
    assert names.work_queue("default") in str(raised.value)


async def test_quorum_queues_run_and_retry_jobs(settings: Settings, store: SQLiteStore) -> None:
    from leveret.cli.demo import worker
    from leveret.jobs import Backoff

    quorum = dataclasses.replace(settings, queue_type=QueueType.QUORUM, delivery_limit=5)
    async with BrokerSession.open(quorum, name="leveret-tests") as session:
        assert session.options.queue_type is QueueType.QUORUM
        producer = Producer(store, session)
        echo = await producer.submit("echo", "replicated")
        flaky = await producer.submit(
            "flaky", {"fail_times": 1}, backoff=Backoff(initial=0.1, jitter=False)
        )
        async with running(worker, quorum):
            done = await until_state(store, echo.id, JobState.COMPLETED)
            retried = await until_state(store, flaky.id, JobState.COMPLETED)
        assert done.result == "replicated"
        assert retried.attempt == 2

        # The work queue really is a quorum queue: redeclaring it with the same arguments
        # but as a classic queue is refused over the queue type.
        arguments = {"x-dead-letter-exchange": session.names.dead_letter_exchange}
        arguments["x-delivery-limit"] = 5
        arguments["x-overflow"] = "reject-publish"
        channel = await session.publishing.channel()
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="x-queue-type"):
            await channel.declare_queue(
                session.names.work_queue("default"), durable=True, arguments=arguments
            )
