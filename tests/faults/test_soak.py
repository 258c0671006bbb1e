"""Soak: a stream of jobs of mixed queues, priorities, types and fates runs on three worker
processes while the test SIGKILLs and SIGTERMs workers (replacing each) and cuts their AMQP
connections through a TCP proxy. Afterwards every job must be terminal; its state must be
what its plan and its handler's logged executions say; no execution may have started after
its job ended; and the DLQs must hold exactly the failed and dead-lettered jobs. The counts
are printed whether or not the checks pass.

Sized for two to three minutes on a small CI machine. Environment variables make it larger:

- LEVERET_SOAK_JOBS: jobs submitted (default 900);
- LEVERET_SOAK_SECONDS: how long jobs keep coming and faults keep happening (default 90);
- LEVERET_SOAK_FAULT_EVERY: seconds between two faults (default 4);
- LEVERET_SOAK_SEED: the random seed of the plan (default: a fresh one, printed).

    LEVERET_SOAK_JOBS=6000 LEVERET_SOAK_SECONDS=600 .venv/bin/pytest tests/faults/test_soak.py
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from yarl import URL

from leveret.broker import BrokerSession, Producer
from leveret.broker.actions import JobActions
from leveret.jobs import Settings
from leveret.jobs.store import JobQuery, SQLiteStore
from tests.faults.soak_checks import explained, judge, summary
from tests.faults.soak_fleet import WORKERS, Faults, Fleet, inject_faults, through
from tests.faults.soak_handlers import LOG_ENV, read_executions
from tests.faults.soak_load import Load, drain_dead_letters, until_all_ended, until_queues_empty
from tests.faults.soak_plan import QUEUES, SIZE, make_plans
from tests.integration.conftest import WorkerProcess
from tests.proxy import TcpProxy


@pytest.mark.slow
@pytest.mark.timeout(SIZE.seconds + SIZE.settle + 240)
async def test_soak_under_kills_stops_and_cuts_loses_nothing_and_runs_nothing_twice_late(
    settings: Settings,
    store: SQLiteStore,
    worker_processes: list[WorkerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(SIZE.seed)
    plans = make_plans(SIZE, rng)
    log_path = tmp_path / "executions.log"
    monkeypatch.setenv(LOG_ENV, str(log_path))  # the workers inherit it
    url = URL(settings.amqp_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5672)
    await proxy.start()
    faults = Faults()
    # The test's own connections go straight to RabbitMQ, with time to ride out an alarm.
    direct = dataclasses.replace(settings, publish_timeout=60.0)
    async with BrokerSession.open(direct, name="leveret-soak") as session:
        fleet = Fleet(through(settings, proxy), worker_processes)
        try:
            with fleet.diagnosed(faults):
                for queue_name in QUEUES:
                    await session.router.ensure_queue(queue_name)
                for _ in range(WORKERS):
                    fleet.start()
                await fleet.until_full_strength(session, "start")
                assert not fleet.problems, fleet.problems
                producer = Producer(store, session)
                load = Load(plans, producer, JobActions(producer), rng)
                began = time.monotonic()
                async with asyncio.TaskGroup() as group:
                    group.create_task(load.submit(began))
                    group.create_task(load.cancel_when_running())
                    until = began + SIZE.seconds
                    group.create_task(inject_faults(fleet, proxy, session, rng, faults, until))
                loaded = time.monotonic()
                await until_all_ended(store, len(plans))
                await until_queues_empty(session)
                await fleet.stop()  # every execution ends and logs before the log is read
                settled = time.monotonic()
        finally:
            fleet.close()
            await proxy.close()
        dlq = await drain_dead_letters(session)
    jobs = {job.id: job for job in (await store.list(JobQuery(limit=len(plans) + 1))).jobs}
    runs = read_executions(log_path)
    verdict = judge(plans, jobs, runs, dlq)
    report = summary(
        plans, jobs, runs, dlq, verdict, faults, fleet, proxy, (loaded - began, settled - loaded)
    )
    with capsys.disabled():
        print(f"\n{report}")

    failures = [f"fleet: {problem}" for problem in fleet.problems]
    failures += [
        f"{check}: {len(found)} job(s), e.g. {found[:10]}"
        for check, found in verdict.problems.items()
        if found
    ]
    suspects = [p[:36] for found in verdict.problems.values() for p in found][:5]
    with fleet.diagnosed(faults, suspects), explained(suspects, jobs, runs):
        assert len(jobs) == len(plans)
        assert min(faults.kills, faults.terms, faults.cuts) > 0, faults
        assert proxy.connections >= 2 * fleet.processes + faults.cuts  # the cuts reconnected
        assert not failures, "\n".join(failures)
        # The counts by state are the counts the handlers' executions (and the cancels) make.
        assert verdict.derived == Counter(j.state for j in jobs.values())
