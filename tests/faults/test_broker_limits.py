"""The broker refusing work for real: a memory alarm forced with `rabbitmqctl` (every
publishing connection blocked) and a work queue made full by an operator's max-length policy.
Whatever the broker refuses, the submitter is told and the job is voided; whatever it
accepted runs."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import httpx
import pytest

from leveret.broker import BrokerSession, Producer
from leveret.jobs import (
    ACTIVE_STATES,
    DLQ_STATES,
    Job,
    JobState,
    PublishError,
    PublishNacked,
    PublishTimeout,
    Settings,
)
from leveret.jobs.store import JobQuery, SQLiteStore
from leveret.workers import JobContext, Worker
from tests.conditions import eventually
from tests.e2e.conftest import DevServer, start_dev, stop_dev
from tests.faults.rabbitmqctl import memory_alarm, memory_alarm_on, queue_counts, queue_policy
from tests.integration.conftest import running, until_state

# Short, so that the alarm, which blocks every publisher on the broker, stays short too.
PUBLISH_TIMEOUT = 1.0


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[DevServer]:
    """`leveret dev` (gateway and demo worker) giving up on a publish after PUBLISH_TIMEOUT."""
    env = {"LEVERET_PUBLISH_TIMEOUT": f"{PUBLISH_TIMEOUT:g}s"}
    server = await asyncio.to_thread(start_dev, tmp_path, env=env)
    yield server
    await asyncio.to_thread(stop_dev, server)


def recording_worker(ran: list[object], release: asyncio.Event | None = None) -> Worker:
    """A worker whose `note` handler records its payload; payloads starting with "held"
    wait for `release` first (so that the worker holds their messages unacked)."""
    worker = Worker()

    @worker.handler("note")
    async def note(ctx: JobContext, payload: object) -> object:
        ran.append(payload)
        if release is not None and str(payload).startswith("held"):
            await release.wait()
        return payload

    return worker


async def refusal(submit: Awaitable[Job]) -> tuple[PublishError, float]:
    """The error a submit the broker must refuse ends with, and how long it took."""
    started = time.monotonic()
    try:
        job = await submit
    except PublishError as exc:
        return exc, time.monotonic() - started
    raise AssertionError(f"the submit was accepted: {job}")


async def the_void(store: SQLiteStore) -> list[Job]:
    """The jobs a refused submit left behind: cancelled, with the reason."""
    return (await store.list(JobQuery(states=frozenset({JobState.CANCELLED})))).jobs


@pytest.mark.slow
async def test_memory_alarm_refuses_submits_in_time_while_workers_still_ack(
    settings: Settings, store: SQLiteStore, dev: DevServer
) -> None:
    """While RabbitMQ's memory alarm blocks publishers, a submit (Python or HTTP) fails
    within the publish timeout (PublishTimeout; 503 with Retry-After) and its job is void,
    not `scheduled`; a worker's acks still get through on its own connection. Once the alarm
    clears, the refused message that reaches the queue late is dropped, and new submits run."""
    fast = dataclasses.replace(settings, publish_timeout=PUBLISH_TIMEOUT)
    ran: list[object] = []
    release = asyncio.Event()
    async with (
        BrokerSession.open(fast, name="leveret-tests") as session,
        running(recording_worker(ran, release), fast),
        httpx.AsyncClient(base_url=dev.url, timeout=30) as http,
    ):
        producer = Producer(store, session)
        work_queue = session.names.work_queue("default")
        held = [await producer.submit("note", f"held-{i}") for i in range(2)]
        for job in held:
            await until_state(store, job.id, JobState.RUNNING)
        assert await queue_counts(work_queue) == (0, 2)  # in the worker's hands, unacked

        async with memory_alarm():
            (error, took), refused = await asyncio.gather(
                refusal(producer.submit("note", "blocked", idempotency_key="order-1")),
                http.post("/api/v1/jobs", json={"type": "echo", "idempotency_key": "order-2"}),
            )
            # The acks of jobs the worker already holds travel on its consuming connection,
            # which the alarm does not block.
            release.set()
            for job in held:
                await until_state(store, job.id, JobState.COMPLETED)
            await eventually(
                lambda: queue_counts(work_queue), lambda c: c == (0, 0), what="held jobs acked"
            )
            # (All of the above happened under the alarm, not after it.)
            assert await memory_alarm_on()

        assert isinstance(error, PublishTimeout), repr(error)
        # Bounded by the publish timeout (plus the time a loaded machine needs), not hanging.
        assert took < PUBLISH_TIMEOUT + 3.0, f"the refused submit took {took:.1f}s"
        (void,) = await the_void(store)
        assert void.payload == "blocked"
        assert void.idempotency_key is None  # freed for the caller's retry
        assert "not accepted" in (void.last_error or "")

        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"].isdigit()
        assert refused.json()["error"]["code"] == "unavailable"
        listed = (await http.get("/api/v1/jobs")).json()["jobs"]
        assert [job["state"] for job in listed] == ["cancelled"]  # void, not scheduled

        # The blocked publish was on the wire and reaches the queue now, ahead of this one
        # (same channel): when this one is done and the queue empty, it has been met.
        after = await producer.submit("note", "after", idempotency_key="order-1")
        await until_state(store, after.id, JobState.COMPLETED)
        await eventually(lambda: queue_counts(work_queue), lambda c: c == (0, 0), what="empty")
        accepted = await http.post(
            "/api/v1/jobs", json={"type": "echo", "payload": 2, "idempotency_key": "order-2"}
        )
        assert accepted.status_code == 201, accepted.text
        done = await http.post(
            f"/api/v1/jobs/{accepted.json()['id']}/wait", json={"timeout": "10s"}
        )
        assert done.json()["state"] == "completed"

    assert sorted(map(str, ran)) == ["after", "held-0", "held-1"]  # "blocked" never ran
    assert (await store.get(void.id)).state is JobState.CANCELLED  # type: ignore[union-attr]


async def test_full_queue_refuses_the_overflow_and_runs_exactly_what_it_accepted(
    settings: Settings, store: SQLiteStore, session: BrokerSession, producer: Producer
) -> None:
    """With an operator's `max-length` + `reject-publish` policy on the work queue and no
    worker, the first `limit` submits are accepted and the rest are nacked: the submitter gets
    PublishNacked and the job is void with the reason. A worker then runs exactly the accepted
    ones."""
    limit, extra = 5, 3
    await session.router.ensure_queue("default")
    work_queue = session.names.work_queue("default")
    policy = {"max-length": limit, "overflow": "reject-publish"}
    ran: list[object] = []
    async with queue_policy(f"{settings.namespace}-full", work_queue, policy):
        accepted: list[Job] = []
        refused: list[tuple[int, PublishError]] = []
        for i in range(limit + extra):
            try:
                accepted.append(await producer.submit("note", i))
            except PublishError as exc:
                refused.append((i, exc))
        assert [job.payload for job in accepted] == list(range(limit))
        assert [i for i, _ in refused] == list(range(limit, limit + extra))
        assert all(isinstance(exc, PublishNacked) for _, exc in refused), refused
        assert await queue_counts(work_queue) == (limit, 0)

        void = await the_void(store)
        assert sorted(job.payload for job in void) == list(range(limit, limit + extra))
        for job in void:
            assert "not accepted: broker refused the publish" in (job.last_error or "")

        async with running(recording_worker(ran), settings):
            for job in accepted:
                await until_state(store, job.id, JobState.COMPLETED)
            await eventually(lambda: queue_counts(work_queue), lambda c: c == (0, 0))

    assert sorted(ran) == list(range(limit))  # type: ignore[type-var]


async def test_full_queue_under_a_plain_max_length_policy_loses_no_accepted_job(
    settings: Settings, store: SQLiteStore, session: BrokerSession, producer: Producer
) -> None:
    """An operator's `max-length` policy that leaves RabbitMQ's default overflow (drop-head)
    must not lose accepted jobs either: every submit is refused (and voided) or its job runs
    or, at worst, ends in the DLQ the API lists. No job may stay `scheduled` while its message
    was dropped from the queue."""
    limit, extra = 3, 2
    await session.router.ensure_queue("default")
    work_queue = session.names.work_queue("default")
    dlq = session.names.dead_letter_queue("default")
    ran: list[object] = []
    async with queue_policy(f"{settings.namespace}-full", work_queue, {"max-length": limit}):
        outcomes: dict[int, Job | PublishError] = {}
        for i in range(limit + extra):
            try:
                outcomes[i] = await producer.submit("note", i)
            except PublishError as exc:
                outcomes[i] = exc
        async with running(recording_worker(ran), settings):
            await eventually(lambda: queue_counts(work_queue), lambda c: c == (0, 0))

    jobs = {job.payload: job for job in (await store.list(JobQuery())).jobs}
    states = {i: jobs[i].state for i in outcomes}
    dead = await queue_counts(dlq)
    explained = f"states {states}, ran {ran}, DLQ (ready, unacked) {dead}"
    stuck = [i for i, state in states.items() if state in ACTIVE_STATES]
    assert not stuck, f"jobs {stuck} accepted but never run: {explained}"
    for i, outcome in outcomes.items():
        if isinstance(outcome, PublishError):
            assert states[i] is JobState.CANCELLED, explained
        else:
            assert states[i] in DLQ_STATES | {JobState.COMPLETED}, explained
