"""The network between Leveret and RabbitMQ failing for real, under load: connections cut
again and again, a link that stalls past the heartbeat, a slow and thin link. Workers and
producer both talk to RabbitMQ through a TCP proxy (tests/proxy.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from yarl import URL

from leveret.broker import BrokerSession, Producer
from leveret.jobs import Job, JobState, PublishError, PublishTimeout, Settings
from leveret.jobs.store import JobQuery, SQLiteStore
from leveret.topology import Names
from leveret.workers import JobContext, Worker
from tests.conditions import eventually
from tests.faults.rabbitmqctl import connection_peer_ports, queue_counts, received_bytes
from tests.integration.conftest import (
    WorkerProcess,
    running,
    until_consumers,
    until_state,
)
from tests.proxy import TcpProxy

# The proxied clients of the load test: two producer sessions and each worker process, two
# connections apiece (publishing and consuming).
WORKER_PROCESSES = 2
CLIENT_CONNECTIONS = 2 * (2 + WORKER_PROCESSES)
# A patient producer waits out a reconnect (about a second); a hasty one gives up first.
PATIENT, HASTY = 10.0, 0.5


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[TcpProxy]:
    url = URL(settings.amqp_url)
    opened = TcpProxy(url.host or "127.0.0.1", url.port or 5672)
    await opened.start()
    yield opened
    await opened.close()


def behind(proxy: TcpProxy, settings: Settings, publish_timeout: float | None = None) -> Settings:
    """`settings` with RabbitMQ reached through `proxy` (and another publish timeout)."""
    timeout = settings.publish_timeout if publish_timeout is None else publish_timeout
    url = proxy.url_for(settings.amqp_url)
    return dataclasses.replace(settings, amqp_url=url, publish_timeout=timeout)


async def completed(store: SQLiteStore) -> int:
    """How many jobs of the default queue are completed."""
    return (await store.counts()).get("default", {}).get(JobState.COMPLETED, 0)


async def everything(store: SQLiteStore) -> dict[object, Job]:
    """Every job in the store, by payload marker."""
    jobs = (await store.list(JobQuery(limit=1000))).jobs
    return {_marker(job.payload): job for job in jobs}


def _marker(payload: object) -> object:
    return payload.get("i") if isinstance(payload, dict) else payload


async def at_least(count: Callable[[], Awaitable[int]], n: int, what: str) -> None:
    """Wait until `count` reaches `n`."""
    await eventually(count, lambda value: value >= n, timeout=60, what=f"{n} {what}")


@pytest.mark.slow
# The thread method ends the whole run when the time is up, which the default cannot do if
# the event loop is starved (a publisher retrying without ever yielding did exactly that).
@pytest.mark.timeout(120, method="thread")
async def test_repeated_cuts_under_load_lose_no_confirmed_job(
    settings: Settings,
    store: SQLiteStore,
    session: BrokerSession,
    proxy: TcpProxy,
    worker_processes: list[WorkerProcess],
) -> None:
    """A stream of submissions from concurrent producers, run by two worker processes, with
    every connection cut four times mid-stream. Producers that wait longer than a reconnect
    for their confirm ride out every cut; those that wait less get a PublishError and the
    job is void. Every submit the broker confirmed ends `completed`, nothing else is in the
    store, and the workers are still alive."""
    total, submitters, cuts = 200, 8, 4
    work_queue = session.names.work_queue("default")
    await session.router.ensure_queue("default")
    for _ in range(WORKER_PROCESSES):
        flags = ("--concurrency", "4", "--queues", "default")
        process = WorkerProcess(behind(proxy, settings), "leveret.cli.demo:worker", *flags)
        worker_processes.append(process)
    await until_consumers(session, work_queue, WORKER_PROCESSES)

    accepted: dict[int, Job] = {}
    refused: dict[int, Exception] = {}

    async def submit_stream(producer: Producer, first: int) -> None:
        for i in range(first, total, submitters):
            try:
                accepted[i] = await producer.submit("sleep", {"seconds": 0.02, "i": i})
            except Exception as exc:  # judged below: it must be a PublishError
                refused[i] = exc

    async def submits_done() -> int:
        return len(accepted) + len(refused)

    async def proxied_connections() -> int:
        return proxy.connections

    async def accepted_done() -> int:
        jobs = await everything(store)
        return sum(1 for i in accepted if jobs[i].state is JobState.COMPLETED)

    async with (
        BrokerSession.open(
            behind(proxy, settings, publish_timeout=PATIENT), name="leveret-tests-patient"
        ) as patient,
        BrokerSession.open(
            behind(proxy, settings, publish_timeout=HASTY), name="leveret-tests-hasty"
        ) as hasty,
    ):
        # Even streams submit patiently, odd ones hastily (`submitters` is even, so the
        # parity of a job's index tells which).
        producers = (Producer(store, patient), Producer(store, hasty))
        start = proxy.connections
        stream = asyncio.gather(*(submit_stream(producers[k % 2], k) for k in range(submitters)))
        for cut in range(1, cuts + 1):
            # Cut at evenly spaced points of the stream, and only once the previous cut's
            # jobs have moved on: a job caught running by cut after cut would (rightly) use
            # up its attempts as if its worker had died each time.
            done_before = await completed(store)
            await at_least(submits_done, total * cut // (cuts + 1), "submits")
            await at_least(lambda: completed(store), done_before + 8, "jobs completed")
            reconnected = proxy.connections + CLIENT_CONNECTIONS
            proxy.cut()
            await at_least(proxied_connections, reconnected, f"connections after cut {cut}")
        await asyncio.wait_for(stream, 60)

        await at_least(accepted_done, len(accepted), "accepted jobs completed")
        await eventually(lambda: queue_counts(work_queue), lambda c: c == (0, 0), what="drained")

    assert proxy.connections >= start + cuts * CLIENT_CONNECTIONS  # really cut, really back
    assert len(accepted) + len(refused) == total
    assert refused, "no hasty submit was caught by a cut"
    assert all(i % 2 == 1 for i in refused), f"a patient submit failed: {refused}"
    assert all(isinstance(exc, PublishError) for exc in refused.values()), refused
    jobs = await everything(store)
    assert set(jobs) == set(range(total))  # nothing missing
    assert sum((await store.counts())["default"].values()) == total  # nothing extra
    for i, job in accepted.items():
        assert jobs[i].id == job.id
        assert jobs[i].state is JobState.COMPLETED, jobs[i]
    for i in refused:
        # Void; or, when its message got through before the confirm was lost, run by a
        # worker before the producer gave up (the void then finds it completed): either
        # way nothing is stuck half-created.
        assert jobs[i].state in {JobState.CANCELLED, JobState.COMPLETED}, jobs[i]
        if jobs[i].state is JobState.CANCELLED:
            assert "not accepted" in (jobs[i].last_error or ""), jobs[i]
    assert all(w.process.poll() is None for w in worker_processes), "a worker died"


@pytest.mark.slow
async def test_link_stalled_past_the_heartbeat_redelivers_and_runs_what_was_in_flight(
    settings: Settings, store: SQLiteStore, producer: Producer, proxy: TcpProxy
) -> None:
    """A worker's link to RabbitMQ stalls until the broker gives up on it (heartbeat): the
    job that finished during the stall is recorded once (its lost ack's redelivery is
    recognised), the job still running is redelivered and completed after the link comes
    back, and the same worker goes on consuming."""
    stalled = behind(proxy, settings)
    # A one-second heartbeat: the broker drops a silent connection within seconds.
    stalled = dataclasses.replace(
        stalled, amqp_url=str(URL(stalled.amqp_url).update_query(heartbeat=1))
    )
    gates = {"in-stall": asyncio.Event(), "across": asyncio.Event()}
    runs: list[tuple[str, int]] = []
    worker = Worker()

    @worker.handler("step")
    async def step(ctx: JobContext, payload: str) -> str:
        runs.append((payload, ctx.attempt))
        gate = gates.get(payload)
        if gate is not None and ctx.attempt == 1:
            await gate.wait()
        return payload

    work_queue = Names(settings.namespace).work_queue("default")
    async with running(worker, stalled):
        in_stall = await producer.submit("step", "in-stall")
        across = await producer.submit("step", "across")
        for job in (in_stall, across):
            await until_state(store, job.id, JobState.RUNNING)
        connections, ports = proxy.connections, proxy.upstream_ports()
        proxy.stall()
        gates["in-stall"].set()  # finishes now; its ack is stuck in the stalled link
        await until_state(store, in_stall.id, JobState.COMPLETED)
        await eventually(
            connection_peer_ports,
            lambda live: not live & ports,
            timeout=30,
            what="the broker dropping the stalled connections",
        )
        proxy.resume()
        taken_over = await until_state(store, across.id, JobState.COMPLETED, timeout=30)
        after = await producer.submit("step", "after")
        done = await until_state(store, after.id, JobState.COMPLETED, timeout=30)
        gates["across"].set()  # the first run of "across" ends; the store refuses its result
        await eventually(lambda: queue_counts(work_queue), lambda c: c == (0, 0), what="drained")

    assert proxy.connections > connections  # the worker reconnected
    # "in-stall" ran once: its redelivery found it completed. "across" ran twice: taken over.
    assert sorted(runs) == [("across", 1), ("across", 2), ("after", 1), ("in-stall", 1)]
    assert taken_over.attempt == 2
    assert taken_over.last_error == "worker running attempt 1 was lost"
    assert done.worker == taken_over.worker  # the same worker, still consuming


@pytest.mark.slow
async def test_slow_link_completes_everything_and_voids_what_misses_the_publish_timeout(
    settings: Settings, store: SQLiteStore, proxy: TcpProxy
) -> None:
    """Over a link with 50 ms latency every job still completes. Over a thin one, a publish
    that cannot be confirmed within the publish timeout raises PublishTimeout and its job is
    void; when its message reaches the queue after all, the worker drops it unrun."""
    delay, timeout = 0.05, 2.0
    slow = behind(proxy, settings, publish_timeout=timeout)
    ran: list[object] = []
    worker = Worker()

    @worker.handler("note")
    async def note(ctx: JobContext, payload: object) -> None:
        ran.append(_marker(payload))

    async with (
        BrokerSession.open(slow, name="leveret-tests") as session,
        running(worker, slow),
    ):
        producer = Producer(store, session)
        work_queue = session.names.work_queue("default")
        await session.router.ensure_queue("default")
        # Slowed once connected: the handshake and topology at 50 ms a round trip are slow,
        # not interesting.
        proxy.slow(delay=delay)

        async def timed(i: int) -> tuple[Job, float]:
            started = time.monotonic()
            job = await producer.submit("note", i)
            return job, time.monotonic() - started

        submitted = await asyncio.gather(*(timed(i) for i in range(40)))
        for job, _ in submitted:
            await until_state(store, job.id, JobState.COMPLETED, timeout=30)
        # A confirm needs the message out and the answer back: the link really was slow.
        assert min(took for _, took in submitted) >= 2 * delay

        # 64 KiB a second: a 300 kB payload needs about five seconds to get through.
        proxy.slow(delay=delay, rate=64 * 1024)
        started = time.monotonic()
        with pytest.raises(PublishTimeout):
            await producer.submit("note", {"i": "big", "blob": "x" * 300_000})
        took = time.monotonic() - started
        proxy.resume()
        # The big message is still on its way, ahead of this one on the same channel: once
        # this one is done and the queue empty, the worker has met it.
        after = await producer.submit("note", "after")
        await until_state(store, after.id, JobState.COMPLETED)
        await eventually(lambda: queue_counts(work_queue), lambda c: c == (0, 0), what="drained")
        # The refused publish did reach the broker, late: it was not lost on the way.
        assert await received_bytes(proxy.upstream_ports()) > 300_000
        assert await queue_counts(session.names.dead_letter_queue("default")) == (0, 0)

    assert timeout <= took < timeout + 3.0, f"the refused submit took {took:.1f}s"
    jobs = await everything(store)
    assert jobs["big"].state is JobState.CANCELLED
    assert "not accepted" in (jobs["big"].last_error or "")
    assert sorted(map(str, ran)) == sorted([*map(str, range(40)), "after"])  # big never ran
