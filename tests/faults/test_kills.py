"""Worker processes killed and stopped under load: several `leveret worker` processes share a
few hundred jobs while the test SIGKILLs some of them mid-job (again and again, starting
replacements) or SIGTERMs them with a short grace. Nothing may be lost, stuck or run again
after it completed; the store's account is held against the handlers' own side record.

tests/integration/test_processes.py covers one job and one worker; this is the fleet."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from leveret.broker import BrokerSession, Producer
from leveret.jobs import Job, JobState, Settings
from leveret.jobs.model import utcnow
from leveret.jobs.store import JobQuery, SQLiteStore
from leveret.jobs.submission import Submission
from tests.conditions import eventually
from tests.faults.kill_handlers import Run, pid_of, read_runs, runs_by_job
from tests.integration.conftest import (
    WorkerProcess,
    all_jobs,
    depth,
    showing_output,
    until_consumers,
    until_exit,
)

HANDLERS = "tests.faults.kill_handlers:worker"
FLEET = 3  # worker processes consuming at any time
CONCURRENCY = 4
GRACE = 1.0  # the SIGTERM test's shutdown timeout, in seconds
EXIT_MARGIN = 8.0  # what a stopping process may take beyond its grace on a busy machine


def start(processes: list[WorkerProcess], settings: Settings, *flags: str) -> WorkerProcess:
    """Start a worker process on the fault handlers; the fixture kills what is left of it."""
    process = WorkerProcess(settings, HANDLERS, "--concurrency", str(CONCURRENCY), *flags)
    processes.append(process)
    return process


def pid(process: WorkerProcess) -> int:
    return process.process.pid


async def completed(store: SQLiteStore) -> int:
    counts = await store.counts()
    return sum(by_state.get(JobState.COMPLETED, 0) for by_state in counts.values())


async def until_completed(store: SQLiteStore, count: int, timeout: float = 60) -> None:
    await eventually(
        lambda: completed(store), lambda n: n >= count, timeout=timeout, what=f"{count} completed"
    )


async def until_running_on(
    store: SQLiteStore,
    process: WorkerProcess,
    accept: Callable[[list[Job]], bool],
    workload: Workload,
) -> list[Job]:
    """The jobs running on `process`, once `accept` holds for them. The workload is topped
    up while the test waits, so that a machine slower or faster than expected changes only
    how much work that takes, never whether the moment comes."""

    async def probe() -> list[Job]:
        await workload.top_up()
        page = await store.list(JobQuery(states=frozenset({JobState.RUNNING}), limit=1000))
        return [job for job in page.jobs if pid_of(job.worker) == pid(process)]

    return await eventually(
        probe, accept, timeout=60, what=f"jobs running on worker process {pid(process)}"
    )


class Workload:
    """`work` jobs in batches, each job taking the seconds its pattern says; more are sent
    whenever fewer than a fleet's worth wait in the queue."""

    def __init__(
        self, producer: Producer, session: BrokerSession, record: Path, pattern: list[float]
    ) -> None:
        self._producer = producer
        self._session = session
        self._record = record
        self._pattern = pattern
        self.jobs: list[Job] = []
        self.seconds: dict[str, float] = {}  # job id → how long it takes

    async def submit(self) -> None:
        """One batch, stored and published at once."""
        # Attempts are not what is tested here: room for a job unlucky enough to be killed
        # more than once, so that every job must end completed.
        submissions = [
            Submission(
                type="work", payload={"record": str(self._record), "seconds": s}, max_attempts=5
            )
            for s in self._pattern
        ]
        submitted = await self._producer.submit_many(submissions)
        self.jobs.extend(submitted)
        self.seconds.update((job.id, s) for job, s in zip(submitted, self._pattern, strict=True))

    async def top_up(self) -> None:
        queue = self._session.names.work_queue("default")
        if await depth(self._session, queue) < FLEET * CONCURRENCY:
            await self.submit()


async def all_completed_and_settled(
    store: SQLiteStore, session: BrokerSession, jobs: list[Job], fleet: list[WorkerProcess]
) -> dict[str, Job]:
    """Wait for every job to complete, stop the fleet, and check that nothing else is left:
    no other job, no other state, and no delivery that could run a job again. The stored
    jobs by id."""
    await until_completed(store, len(jobs), timeout=90)
    await stop_all(fleet)
    stored = {job.id: job for job in await all_jobs(store)}
    assert set(stored) == {job.id for job in jobs}
    states = Counter(job.state for job in stored.values())
    assert states == {JobState.COMPLETED: len(jobs)}, states
    assert await depth(session, session.names.work_queue("default")) == 0
    assert await depth(session, session.names.dead_letter_queue("default")) == 0
    return stored


async def stop_all(processes: list[WorkerProcess]) -> None:
    """SIGTERM every live worker; each must exit 0 by itself, its deliveries settled."""
    live = [p for p in processes if p.process.poll() is None]
    for process in live:
        process.process.send_signal(signal.SIGTERM)
    for process in live:
        assert await until_exit(process, GRACE + EXIT_MARGIN) == 0


def started_since(job: Job, moment: datetime) -> bool:
    return job.started_at is not None and job.started_at >= moment


def completing_run(job: Job, runs: list[Run]) -> Run:
    """The run that completed `job`: its last in the side record, which must match what the
    store recorded (same attempt, same process). Nothing ran it after it completed."""
    assert job.state is JobState.COMPLETED, job
    assert isinstance(job.result, dict), job
    assert job.result == {"pid": pid_of(job.worker), "attempt": job.attempt}, job
    assert runs, f"job {job.id} completed, but no run of it is recorded"
    last = runs[-1]
    assert (last.attempt, last.pid) == (job.attempt, job.result["pid"]), (job, runs)
    return last


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_sigkilled_workers_under_load_lose_no_job_and_rerun_none_after_it_completed(
    settings: Settings,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker_processes: list[WorkerProcess],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Three rounds of SIGKILL (one worker, then two at once, then one), each landing while
    the victims run jobs, with replacements started: every job completes; each job killed
    mid-run completes elsewhere as a later attempt; an earlier attempt exists only where its
    worker was killed; no attempt ran twice; nothing ran after its completion."""
    record = tmp_path / "runs.log"
    work_queue = session.names.work_queue("default")
    workload = Workload(producer, session, record, [0.25] * 100)
    killed: set[int] = set()
    with showing_output(worker_processes):
        fleet = [start(worker_processes, settings) for _ in range(FLEET)]
        await session.router.ensure_queue("default")
        await until_consumers(session, work_queue, FLEET)
        await workload.submit()

        for progress, victims in ((20, 1), (45, 2), (70, 1)):
            await until_completed(store, progress)
            doomed = fleet[:victims]
            for victim in doomed:
                # Kill only a worker seen running jobs: the kill lands mid-job (a 0.25s job
                # cannot finish in the moment between the look and the signal).
                await until_running_on(store, victim, lambda running: len(running) >= 2, workload)
                victim.process.send_signal(signal.SIGKILL)
            for victim in doomed:
                assert await until_exit(victim, 10) == -signal.SIGKILL
                killed.add(pid(victim))
            fleet = fleet[victims:] + [start(worker_processes, settings) for _ in doomed]
            await until_consumers(session, work_queue, FLEET)

        stored = await all_completed_and_settled(store, session, workload.jobs, fleet)

        runs = read_runs(record)
        by_job = runs_by_job(runs)
        assert set(by_job) == set(stored)
        interrupted: Counter[int] = Counter()
        for job_id, job_runs in by_job.items():
            job = stored[job_id]
            done = completing_run(job, job_runs)
            attempts = [run.attempt for run in job_runs]
            assert len(set(attempts)) == len(attempts), job_runs  # no attempt ran twice
            assert attempts == sorted(attempts), job_runs
            for earlier in job_runs[:-1]:
                # The handler never fails: an attempt before the last ended with its worker.
                assert earlier.pid in killed, (job, job_runs)
                assert earlier.pid != done.pid, (job, job_runs)
                assert job.attempt > earlier.attempt, (job, job_runs)
                interrupted[earlier.pid] += 1
        # Every kill cut jobs short, and each of those completed as a later attempt.
        assert set(interrupted) == killed, (interrupted, killed)
        retried = sum(1 for job in stored.values() if job.attempt > 1)

    with capsys.disabled():
        print(
            f"\n[faults] SIGKILL under load: {len(stored)} jobs completed, {len(killed)} workers "
            f"killed, {sum(interrupted.values())} runs cut short, {retried} jobs completed "
            f"as a later attempt, {len(runs)} runs recorded"
        )


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_sigterm_under_load_finishes_or_hands_back_every_job_in_flight(
    settings: Settings,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker_processes: list[WorkerProcess],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two rounds of SIGTERM (grace 1s) to a worker running both short jobs and long ones,
    with replacements started: the stopped process exits 0 within its grace and a margin;
    the short jobs it ran finish on it, the long ones are handed back and completed by
    another worker; no job is lost, and a graceful stop costs no job an attempt."""
    short, long = 0.1, 4.0
    record = tmp_path / "runs.log"
    work_queue = session.names.work_queue("default")
    grace = ["--shutdown-timeout", f"{GRACE}s"]
    workload = Workload(
        producer, session, record, [long if i % 8 == 0 else short for i in range(48)]
    )
    # pid → when it was signalled, and the jobs running on it then
    stopped: dict[int, tuple[datetime, list[Job]]] = {}
    exit_seconds: list[float] = []

    def is_long(job: Job) -> bool:
        return workload.seconds[job.id] == long

    def mixed(running: list[Job]) -> bool:
        # A long job begun this recently cannot finish within the grace; a short one cannot
        # fail to.
        fresh = utcnow() - timedelta(seconds=long - GRACE - 1.5)
        begun = [job for job in running if is_long(job) and started_since(job, fresh)]
        return bool(begun) and not all(is_long(job) for job in running)

    with showing_output(worker_processes):
        fleet = [start(worker_processes, settings, *grace) for _ in range(FLEET)]
        await session.router.ensure_queue("default")
        await until_consumers(session, work_queue, FLEET)
        await workload.submit()

        for _ in range(2):
            victim = fleet[0]
            # Signal a worker running a long job beside a short one.
            in_flight = await until_running_on(store, victim, mixed, workload)
            victim.process.send_signal(signal.SIGTERM)
            signalled, signalled_at = time.monotonic(), utcnow()
            assert await until_exit(victim, GRACE + EXIT_MARGIN) == 0
            exit_seconds.append(time.monotonic() - signalled)
            stopped[pid(victim)] = (signalled_at, in_flight)
            fleet = [*fleet[1:], start(worker_processes, settings, *grace)]
            await until_consumers(session, work_queue, FLEET)

        stored = await all_completed_and_settled(store, session, workload.jobs, fleet)

        by_job = runs_by_job(read_runs(record))
        assert set(by_job) == set(stored)
        for job_id, job_runs in by_job.items():
            job = stored[job_id]
            done = completing_run(job, job_runs)
            # An interrupted run is handed back as if it never started.
            assert job.attempt == 1, (job, job_runs)
            for earlier in job_runs[:-1]:
                assert earlier.pid in stopped, (job, job_runs)  # only a stop interrupts
                assert earlier.pid != done.pid, (job, job_runs)

        finished_in_grace = handed_back = 0
        for victim_pid, (signalled_at, in_flight) in stopped.items():
            # Started this close to the signal, a long job cannot finish within the grace.
            too_long = signalled_at - timedelta(seconds=long - GRACE - 1.0)
            for running in in_flight:
                job = stored[running.id]
                if pid_of(job.worker) == victim_pid:
                    finished_in_grace += 1
                else:
                    handed_back += 1
                    assert victim_pid in {run.pid for run in by_job[job.id]}, job
                if not is_long(running):
                    assert pid_of(job.worker) == victim_pid, job  # it fit in the grace
                elif started_since(running, too_long):
                    assert pid_of(job.worker) != victim_pid, job  # it did not
        assert handed_back >= len(stopped), stopped  # each stop handed a long job back

    with capsys.disabled():
        slowest = max(exit_seconds)
        print(
            f"\n[faults] SIGTERM under load: {len(stored)} jobs completed, {len(stopped)} workers "
            f"stopped (slowest exit {slowest:.1f}s, grace {GRACE:g}s), {finished_in_grace} "
            f"in-flight jobs finished in the grace, {handed_back} handed back"
        )
