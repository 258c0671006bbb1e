"""Worker processes killed and stopped for real: SIGKILL, SIGTERM, SIGINT, a job that kills
its worker every time. Each worker is `python -m leveret worker ...`, started as a user would."""

from __future__ import annotations

import signal

import pytest

from leveret.broker import BrokerSession, Producer
from leveret.jobs import TERMINAL_STATES, Job, JobState, Settings
from leveret.jobs.store import SQLiteStore
from tests.conditions import eventually
from tests.integration.conftest import (
    WorkerProcess,
    depth,
    job_state,
    showing_output,
    until_consumers,
    until_exit,
    until_finished,
    until_state,
)

DEMO = "leveret.cli.demo:worker"
SUICIDAL = "tests.integration.handlers:worker"


def start(
    processes: list[WorkerProcess], settings: Settings, *flags: str, target: str = DEMO
) -> WorkerProcess:
    """Start a worker process; the `worker_processes` fixture kills what is left of it."""
    process = WorkerProcess(settings, target, *flags)
    processes.append(process)
    return process


async def ready(session: BrokerSession, count: int = 1) -> None:
    """Wait until `count` consumers are on the default work queue."""
    await session.router.ensure_queue("default")
    await until_consumers(session, session.names.work_queue("default"), count)


def ran_in(job: Job, process: WorkerProcess) -> bool:
    """Whether the job's `worker` names `process` (a worker id is host/pid/suffix)."""
    return job.worker is not None and f"/{process.process.pid}/" in job.worker


@pytest.mark.slow
async def test_job_of_a_killed_worker_completes_on_another_as_its_second_attempt(
    settings: Settings,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker_processes: list[WorkerProcess],
) -> None:
    with showing_output(worker_processes):
        first = start(worker_processes, settings, "--concurrency", "1")
        await ready(session)
        job = await producer.submit("sleep", {"seconds": 3})
        running = await until_state(store, job.id, JobState.RUNNING)
        assert ran_in(running, first), running.worker

        first.process.send_signal(signal.SIGKILL)
        assert await until_exit(first, 10) == -signal.SIGKILL
        second = start(worker_processes, settings, "--concurrency", "1")
        done = await until_finished(store, job.id, timeout=30)

        assert done.state is JobState.COMPLETED, done
        assert done.worker != running.worker
        assert ran_in(done, second), done.worker
        assert done.attempt == 2  # the attempt lost with the first worker counts
        assert done.result == {"slept": 3.0}
        assert await depth(session, session.names.dead_letter_queue("default")) == 0
        assert await depth(session, session.names.work_queue("default")) == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
async def test_stop_signal_lets_the_running_job_finish_within_the_grace_period(
    stop_signal: signal.Signals,
    settings: Settings,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker_processes: list[WorkerProcess],
) -> None:
    with showing_output(worker_processes):
        worker = start(
            worker_processes, settings, "--concurrency", "1", "--shutdown-timeout", "20s"
        )
        await ready(session)
        job = await producer.submit("sleep", {"seconds": 1.5})
        await until_state(store, job.id, JobState.RUNNING)

        worker.process.send_signal(stop_signal)
        assert await until_exit(worker, 20) == 0
        # The process exits only after it has settled the job: no waiting needed here.
        done = await job_state(store, job.id)

        assert done.state is JobState.COMPLETED, done
        assert done.attempt == 1
        assert done.result == {"slept": 1.5}
        assert ran_in(done, worker), done.worker
        assert await depth(session, session.names.work_queue("default")) == 0
        assert await depth(session, session.names.dead_letter_queue("default")) == 0


@pytest.mark.slow
async def test_sigterm_past_a_short_grace_hands_every_job_back_and_loses_none(
    settings: Settings,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker_processes: list[WorkerProcess],
) -> None:
    work_queue = session.names.work_queue("default")
    with showing_output(worker_processes):
        stopping = start(
            worker_processes,
            settings,
            "--concurrency",
            "1",
            "--prefetch",
            "4",
            "--shutdown-timeout",
            "0.3s",
        )
        await ready(session)
        jobs = [await producer.submit("sleep", {"seconds": 4}) for _ in range(4)]
        ids = [job.id for job in jobs]

        async def states() -> list[JobState]:
            return [(await job_state(store, job_id)).state for job_id in ids]

        # One job runs and the other three sit prefetched in the worker, none in the queue.
        await eventually(
            states,
            lambda found: (
                found.count(JobState.RUNNING) == 1 and found.count(JobState.SCHEDULED) == 3
            ),
            what="one job running, three scheduled",
        )
        await eventually(
            lambda: depth(session, work_queue), lambda n: n == 0, what="all four prefetched"
        )

        stopping.process.send_signal(signal.SIGTERM)
        assert await until_exit(stopping, 10) == 0

        for job_id in ids:
            back = await job_state(store, job_id)
            assert back.state is JobState.SCHEDULED, back
            assert back.attempt == 0, back  # the interrupted attempt does not count
            assert back.worker is None, back
        await eventually(
            lambda: depth(session, work_queue), lambda n: n == 4, what="four messages requeued"
        )

        start(worker_processes, settings, "--concurrency", "4")
        for job_id in ids:
            done = await until_finished(store, job_id, timeout=30)
            assert done.state is JobState.COMPLETED, done
            assert done.attempt == 1, done
            assert done.result == {"slept": 4.0}
        assert await depth(session, session.names.dead_letter_queue("default")) == 0
        assert await depth(session, work_queue) == 0


async def until_dead_or_ended(
    process: WorkerProcess, store: SQLiteStore, job_id: str
) -> tuple[int | None, Job]:
    """Wait until `process` has exited or the job is terminal: (exit code or None, job)."""

    async def probe() -> tuple[int | None, Job]:
        return process.process.poll(), await job_state(store, job_id)

    return await eventually(
        probe,
        lambda found: found[0] is not None or found[1].state in TERMINAL_STATES,
        timeout=20,
        what=f"worker process {process.process.pid} to die or job {job_id} to end",
    )


@pytest.mark.slow
async def test_job_that_kills_its_worker_every_time_is_dead_lettered_not_looped(
    settings: Settings,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker_processes: list[WorkerProcess],
) -> None:
    await session.router.ensure_queue("default")
    job = await producer.submit("suicide", max_attempts=2)
    killed: list[int] = []
    with showing_output(worker_processes):
        for _ in range(4):
            worker = start(worker_processes, settings, "--concurrency", "1", target=SUICIDAL)
            code, seen = await until_dead_or_ended(worker, store, job.id)
            if seen.state in TERMINAL_STATES:
                break
            assert code is not None
            killed.append(code)

        done = await job_state(store, job.id)
        # Two attempts, each lost with its worker; the third delivery is taken over and
        # dead-lettered without running the handler, so the last worker survives.
        assert killed == [-signal.SIGKILL, -signal.SIGKILL], killed
        assert done.state is JobState.DEAD_LETTER, done
        assert done.error_category == "lost", done
        assert done.attempt == 3, done
        assert worker.process.poll() is None, "the worker that dead-lettered the job died"
        dlq = session.names.dead_letter_queue("default")
        await eventually(lambda: depth(session, dlq), lambda n: n == 1, what="the job in the DLQ")
        assert await depth(session, session.names.work_queue("default")) == 0


async def test_stuck_thread_handler_does_not_keep_a_stopped_worker_alive(
    settings: Settings,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker_processes: list[WorkerProcess],
) -> None:
    with showing_output(worker_processes):
        worker = start(worker_processes, settings, "--shutdown-timeout", "0.3s", target=SUICIDAL)
        await ready(session)
        job = await producer.submit("block", 600)
        await until_state(store, job.id, JobState.RUNNING)

        worker.process.send_signal(signal.SIGTERM)
        assert await until_exit(worker, 15) == 0
        back = await job_state(store, job.id)

        assert back.state is JobState.SCHEDULED, back
        assert back.attempt == 0
        assert await depth(session, session.names.work_queue("default")) == 1
