"""Delayed jobs travel through the TTL tiers: never early, and never behind a longer delay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from leveret.broker import BrokerSession, Producer
from leveret.jobs import JobState, Settings
from leveret.jobs.store import SQLiteStore
from leveret.topology import DELAY_TIERS_MS
from leveret.workers import JobContext, Worker
from tests.integration.conftest import depth, job_state, running, until_state


async def test_delayed_jobs_never_run_early(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    ran_at: dict[str, datetime] = {}
    worker = Worker()

    @worker.handler("timed")
    async def timed(ctx: JobContext, payload: object) -> None:
        ran_at[ctx.id] = datetime.now(UTC)

    # 0.3 s is below one tier, 1.3 s and 2.7 s need hops between tiers.
    delays = [0.3, 1.3, 2.7]
    jobs = [await producer.submit("timed", delay=d) for d in delays]
    assert all(j.state is JobState.DELAYED for j in jobs)
    async with running(worker, settings):
        await asyncio.gather(*(until_state(store, j.id, JobState.COMPLETED) for j in jobs))

    for job, delay in zip(jobs, delays, strict=True):
        assert job.scheduled_at is not None
        assert ran_at[job.id] >= job.scheduled_at, (delay, ran_at[job.id], job.scheduled_at)
        assert ran_at[job.id] - job.scheduled_at < timedelta(seconds=1.5), delay


async def test_short_delay_is_not_held_up_behind_a_long_one(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    from leveret.cli.demo import worker

    long = await producer.submit("echo", "long", delay=120)
    short = await producer.submit("echo", "short", delay=0.5)
    async with running(worker, settings):
        await until_state(store, short.id, JobState.COMPLETED, timeout=5)
        assert (await job_state(store, long.id)).state is JobState.DELAYED


async def test_scheduled_at_in_the_past_runs_now(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    from leveret.cli.demo import worker

    job = await producer.submit("echo", 1, scheduled_at=datetime.now(UTC) - timedelta(hours=1))
    assert job.state is JobState.SCHEDULED
    async with running(worker, settings):
        done = await until_state(store, job.id, JobState.COMPLETED)
    assert done.result == 1


async def test_a_delayed_message_waits_in_exactly_one_tier(
    session: BrokerSession, producer: Producer
) -> None:
    await producer.submit("timed", delay=3600)
    names = session.names
    by_tier = {ms: await depth(session, names.delay_queue(ms)) for ms in DELAY_TIERS_MS}
    assert sum(by_tier.values()) == 1, by_tier  # not one copy per tier
    (tier,) = [ms for ms, n in by_tier.items() if n]
    assert tier == 1_800_000  # just under an hour to go: the 30-minute tier, then hops
    assert await depth(session, names.work_queue("default")) == 0
