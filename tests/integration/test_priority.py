"""Priorities reorder work that is still waiting in the queue."""

from __future__ import annotations

import asyncio
import dataclasses

from leveret.broker import Producer
from leveret.jobs import JobState, Priority, Settings
from leveret.jobs.store import SQLiteStore
from leveret.jobs.submission import Submission
from leveret.workers import JobContext, Worker
from tests.integration.conftest import running, until_state


async def test_critical_job_overtakes_hundreds_of_bulk_jobs(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    order: list[str] = []
    worker = Worker()

    @worker.handler("work")
    async def work(ctx: JobContext, payload: object) -> None:
        order.append(ctx.id)

    bulk = await producer.submit_many(
        [Submission(type="work", priority=Priority.BULK) for _ in range(300)]
    )
    critical = await producer.submit("work", priority=Priority.CRITICAL)
    one_at_a_time = dataclasses.replace(settings, concurrency=1, prefetch=1)

    async with running(worker, one_at_a_time):
        await until_state(store, critical.id, JobState.COMPLETED)

    assert len(bulk) == 300
    # Published last, behind 300 others: without priorities it would run 301st.
    assert order.index(critical.id) < 3, order.index(critical.id)


async def test_priorities_run_in_order_when_all_are_waiting(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    ran: list[int] = []
    worker = Worker()

    @worker.handler("work")
    async def work(ctx: JobContext, payload: object) -> None:
        ran.append(ctx.job.priority)

    submitted = await producer.submit_many(
        [Submission(type="work", priority=p) for p in [4, 3, 2, 1, 0] * 4]
    )
    one_at_a_time = dataclasses.replace(settings, concurrency=1, prefetch=1)
    async with running(worker, one_at_a_time):
        await asyncio.gather(*(until_state(store, j.id, JobState.COMPLETED) for j in submitted))

    assert ran == sorted(ran), ran
