"""Fixtures for tests against the real RabbitMQ: a fresh namespace per test, torn down after."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from leveret.broker import BrokerSession, Producer, queue_depth
from leveret.jobs import TERMINAL_STATES, Job, JobState, Settings
from leveret.jobs.store import JobQuery, SQLiteStore
from leveret.topology import Names
from leveret.workers import Worker
from tests.conditions import eventually
from tests.rabbitmq import AMQP_URL, TEST_QUEUES, delete_namespace, require_rabbitmq

ROOT = Path(__file__).resolve().parents[2]

_rabbitmq = pytest.fixture(scope="session", autouse=True)(require_rabbitmq)


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    """A fresh namespace; whatever a test declared under it is deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    await delete_namespace(Names(name), TEST_QUEUES)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/leveret.db"


@pytest.fixture
def settings(namespace: str, store_url: str) -> Settings:
    return Settings(
        amqp_url=AMQP_URL,
        store_url=store_url,
        namespace=namespace,
        concurrency=4,
        shutdown_timeout=5.0,
        publish_timeout=5.0,
    )


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore.from_url(store_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def session(settings: Settings) -> AsyncIterator[BrokerSession]:
    async with BrokerSession.open(settings, name="leveret-tests") as opened:
        yield opened


@pytest.fixture
async def producer(store: SQLiteStore, session: BrokerSession) -> Producer:
    return Producer(store, session)


@asynccontextmanager
async def running(worker: Worker, settings: Settings) -> AsyncIterator[Worker]:
    """Run `worker` in this process for the duration of the block, then stop it."""
    task = asyncio.create_task(worker.run(settings))
    ready = asyncio.create_task(worker.wait_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()  # raises what made run() return
    assert ready in done, "worker did not start within 15s"
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def job_state(store: SQLiteStore, job_id: str) -> Job:
    job = await store.get(job_id)
    assert job is not None, f"job {job_id} is not in the store"
    return job


async def until_state(
    store: SQLiteStore, job_id: str, states: frozenset[JobState] | JobState, timeout: float = 15.0
) -> Job:
    """The job once it is in one of `states`. It need not be in the store yet: a job published
    straight over AMQP, say, is recorded when a worker first meets it."""
    wanted = frozenset({states}) if isinstance(states, JobState) else states
    job = await eventually(
        lambda: store.get(job_id),
        lambda job: job is not None and job.state in wanted,
        timeout=timeout,
        what=f"job {job_id} in {sorted(wanted)}",
    )
    assert job is not None
    return job


async def until_finished(store: SQLiteStore, job_id: str, timeout: float = 15.0) -> Job:
    return await until_state(store, job_id, TERMINAL_STATES, timeout)


async def depth(session: BrokerSession, queue_name: str) -> int:
    ready, _ = await queue_depth(session.consuming, queue_name)
    return ready


class WorkerProcess:
    """A `leveret worker` started as its own OS process, as a user would."""

    def __init__(self, settings: Settings, target: str, *extra: str) -> None:
        env = {
            **os.environ,
            "LEVERET_AMQP_URL": settings.amqp_url,
            "LEVERET_STORE_URL": settings.store_url,
            "LEVERET_NAMESPACE": settings.namespace,
            "PYTHONPATH": str(ROOT),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "leveret", "worker", target, "--log-level", "INFO", *extra],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        if self.process.poll() is None:
            self.process.kill()
        out, _ = self.process.communicate(timeout=10)
        return out.decode(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def showing_output(processes: list[WorkerProcess]) -> Iterator[None]:
    """On failure, attach every worker process's exit code and output to the error."""
    try:
        yield
    except BaseException as exc:
        for process in processes:
            code = process.process.poll()
            status = "still running" if code is None else f"exit code {code}"
            exc.add_note(
                f"--- worker process {process.process.pid} ({status}) ---\n{process.output()}"
            )
        raise


async def until_exit(process: WorkerProcess, timeout: float) -> int:
    """The exit code of `process`, once it has exited by itself within `timeout` seconds."""

    async def returncode() -> int | None:
        return process.process.poll()

    code = await eventually(
        returncode,
        lambda found: found is not None,
        timeout=timeout,
        what=f"worker process {process.process.pid} to exit",
    )
    assert code is not None
    return code


async def all_jobs(store: SQLiteStore) -> list[Job]:
    """Every job in the store, page by page."""
    found: list[Job] = []
    cursor: str | None = None
    while True:
        page = await store.list(JobQuery(limit=1000, cursor=cursor))
        found += page.jobs
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


@pytest.fixture
def worker_processes() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for process in started:
        process.stop()


async def until_consumers(session: BrokerSession, queue_name: str, count: int) -> None:
    await eventually(
        lambda: queue_depth(session.consuming, queue_name),
        lambda result: result[1] >= count,
        timeout=20,
        what=f"{count} consumer(s) on {queue_name}",
    )
