"""The SQLite job store made unwritable for real: another OS process holds its write lock
(`BEGIN EXCLUSIVE`) for longer than the store's busy timeout, then lets go. Workers lose no
job and do not die; a submit fails cleanly, over Python and HTTP, and publishes nothing."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from leveret.broker import BrokerSession, Producer, job_message
from leveret.broker.hooks import PublishReason
from leveret.jobs import JobState, Settings
from leveret.jobs.envelope import Envelope
from leveret.jobs.errors import StoreUnavailable
from leveret.jobs.model import new_job_id
from leveret.jobs.store import SQLiteStore
from tests.conditions import eventually
from tests.e2e.conftest import start_dev, stop_dev
from tests.faults.test_bad_handlers import Tap, showing_output, start_tapped
from tests.integration.conftest import (
    WorkerProcess,
    depth,
    until_consumers,
    until_finished,
    until_state,
)
from tests.rabbitmq import AMQP_URL

FLAGS = ("--concurrency", "2")
BUSY_TIMEOUT = 10.0  # seconds the store waits for SQLite's lock before a write fails
# Log lines that show a write really failed: an outcome, and the start of a delivery.
OUTCOME_WRITE_FAILED = "store write failed"
START_WRITE_FAILED = "job store failed"

# Holds the database's write lock from "lock" to "release" on stdin (or until stdin closes,
# so that the lock dies with the test). A separate interpreter: a lock held across processes
# is what several Leveret processes sharing one file would meet.
_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
sys.stdin.readline()
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
print("released", flush=True)
"""


class StoreLock:
    """A process that holds a SQLite database's write lock on demand."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    async def _say(self, word: str, answer: str) -> None:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(f"{word}\n".encode())
        await self._process.stdin.drain()
        line = await asyncio.wait_for(self._process.stdout.readline(), BUSY_TIMEOUT + 5)
        assert line.decode().strip() == answer, f"lock holder said {line!r}"

    async def lock(self) -> None:
        """Take the write lock; return once it is held."""
        await self._say("lock", "locked")

    async def release(self) -> None:
        """Let go of the write lock; return once it is free."""
        await self._say("release", "released")


@asynccontextmanager
async def lock_holder(path: str) -> AsyncIterator[StoreLock]:
    """A lock holder for the database at `path`, started and idle; killed afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLDER,
        path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield StoreLock(process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def until_logged(taps: dict[str, Tap], timeout: float) -> None:
    """Wait until each tap has written its line; fail at once if one of them dies."""

    async def missing() -> list[str]:
        for tap in taps.values():
            assert tap.alive(), "a worker process died while the store was locked"
        return [line for line, tap in taps.items() if not tap.saw(line)]

    await eventually(missing, lambda left: not left, timeout=timeout, what="failed writes")


@pytest.mark.slow
async def test_jobs_delivered_while_the_store_is_locked_all_complete_once_it_is_back(
    settings: Settings,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker_processes: list[WorkerProcess],
) -> None:
    """While the store cannot be written, a worker whose job just finished cannot record
    the outcome, and a worker handed jobs cannot start them. Neither dies, acks a job it
    did not record, or counts an attempt the outage cost; once the lock is gone every job
    ends completed, once, and the queues are empty. One of the jobs exists only as an AMQP
    message (published by a non-Leveret producer during the outage): it is recorded too."""
    async with lock_holder(store.path) as holder:
        finisher = start_tapped(settings, worker_processes, "--queues", "alpha", *FLAGS)
        starter: Tap | None = None
        try:
            with showing_output(finisher):
                await session.router.ensure_queue("alpha")
                await until_consumers(session, session.names.work_queue("alpha"), 1)
                # max_attempts=1: an attempt charged for the outage would dead-letter it.
                running = await producer.submit("nap", 1.0, queue="alpha", max_attempts=1)
                queued = [await producer.submit("nap", 0.0) for _ in range(2)]
                await until_state(store, running.id, JobState.RUNNING)
                await holder.lock()
                raw = Envelope(id=new_job_id(), type="nap", payload=0.0)
                await session.router.send(
                    "default", job_message(raw, attempt=1), None, reason=PublishReason.SUBMIT
                )

            starter = start_tapped(settings, worker_processes, "--queues", "default", *FLAGS)
            with showing_output(finisher, starter):
                await until_logged(
                    {OUTCOME_WRITE_FAILED: finisher, START_WRITE_FAILED: starter},
                    timeout=BUSY_TIMEOUT * 3,
                )
                await holder.release()
                finished = {
                    job_id: await until_finished(store, job_id, timeout=BUSY_TIMEOUT * 2)
                    for job_id in (running.id, raw.id, *(job.id for job in queued))
                }
                assert finisher.alive()
                assert starter.alive()
        finally:
            for tap in (finisher, starter):
                if tap is not None:
                    tap.close()

    for job in finished.values():
        assert job.state is JobState.COMPLETED, job
    ran = finished[running.id]
    assert ran.attempt == 1, ran  # the handler did its work once; the outage is no attempt
    assert ran.last_error is None, ran.last_error
    assert finished[raw.id].type == "nap"
    counts = await store.counts()
    assert counts == {"alpha": {JobState.COMPLETED: 1}, "default": {JobState.COMPLETED: 3}}
    for queue in ("alpha", "default"):
        assert await depth(session, session.names.work_queue(queue)) == 0
        assert await depth(session, session.names.dead_letter_queue(queue)) == 0


@pytest.mark.slow
async def test_submit_while_the_store_is_locked_fails_cleanly_and_publishes_nothing(
    tmp_path: Path,
) -> None:
    """A job that cannot be recorded is not published. From Python the producer raises the
    store's own StoreUnavailable; over HTTP the gateway answers 503 with Retry-After and the
    API's JSON error body, not a 500, and stays up. Once the lock is gone the same
    idempotency keys are free and submits go through."""
    server = await asyncio.to_thread(start_dev, tmp_path)
    try:
        settings = Settings(
            amqp_url=AMQP_URL,
            store_url=f"sqlite:///{server.store_path}",
            namespace=server.namespace,
        )
        # `leveret dev` consumes the default queue; the Python producer uses another, that
        # nothing consumes, so that its depth tells whether anything was published.
        async with (
            lock_holder(str(server.store_path)) as holder,
            BrokerSession.open(settings, name="leveret-tests") as session,
            opened_store(settings) as store,
            httpx.AsyncClient(base_url=server.url, timeout=BUSY_TIMEOUT * 3) as http,
        ):
            producer = Producer(store, session)
            await session.router.ensure_queue("alpha")
            await holder.lock()
            refused, answer = await asyncio.gather(
                producer.submit("echo", 1, queue="alpha", idempotency_key="py-1"),
                http.post("/api/v1/jobs", json={"type": "echo", "idempotency_key": "http-1"}),
                return_exceptions=True,
            )
            assert (await http.get("/live")).status_code == 200
            await holder.release()

            assert isinstance(refused, StoreUnavailable), refused
            assert "database is locked" in str(refused)
            assert await depth(session, session.names.work_queue("alpha")) == 0
            assert isinstance(answer, httpx.Response), answer
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("application/json")
            assert answer.headers["retry-after"].isdigit()
            assert answer.json()["error"]["code"] == "unavailable"
            assert "job store" in answer.json()["error"]["message"]
            assert await store.counts() == {}  # neither was recorded

            again = await producer.submit("echo", 1, queue="alpha", idempotency_key="py-1")
            assert again.state is JobState.SCHEDULED
            await eventually(
                lambda: depth(session, session.names.work_queue("alpha")),
                lambda ready: ready == 1,
                what="the accepted job on its queue",
            )
            accepted = await http.post(
                "/api/v1/jobs", json={"type": "echo", "idempotency_key": "http-1"}
            )
            assert accepted.status_code == 201, accepted.text
    finally:
        await asyncio.to_thread(stop_dev, server)


@asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore.from_url(settings.store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
