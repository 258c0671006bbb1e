"""The gateway restarted under load: `leveret serve` runs as its own process beside two
`leveret worker` processes while a few clients submit jobs over HTTP without pause. The test
kills the gateway with SIGKILL and starts it again on the same port, store and namespace,
several times, then stops it with SIGTERM and starts it again. A client that gets no clean
answer resubmits with the same idempotency key, as a client should; every answer must be one
a client can act on, and the store and the handlers' side record must agree with what the
clients were told.

The gateway reaches RabbitMQ through the tests' TCP proxy, so that one kill can be made to
land where a kill at a random moment lands only now and then: after a job is stored and
before its publish reaches the broker (the proxy holds the bytes, and drops them with the
dead gateway's connection, as the network does with a crashed host's)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from yarl import URL

from leveret.broker import BrokerSession, queue_depth
from leveret.jobs import TERMINAL_STATES, Job, JobState, Settings
from leveret.jobs.model import utcnow
from leveret.jobs.store import JobQuery, SQLiteStore
from tests.conditions import eventually
from tests.e2e.conftest import free_port
from tests.faults.kill_handlers import read_runs, runs_by_job
from tests.integration.conftest import ROOT, WorkerProcess, all_jobs, until_consumers
from tests.proxy import TcpProxy
from tests.rabbitmq import AMQP_URL

HANDLERS = "tests.faults.kill_handlers:worker"
SUBMITTERS = 4
STEP = 25  # jobs accepted between two faults: the gateway is seen serving under load
KILL, STALLED_KILL, STOP = "kill", "kill while its publishes are held", "stop"
FAULTS = (KILL, KILL, STALLED_KILL, STOP)
UP_TIMEOUT = 45.0  # for a gateway process to start and answer /ready on a busy machine


class Gateway:
    """`leveret serve` on a fixed port, restartable: every run appends to one log."""

    def __init__(self, settings: Settings, amqp_url: str, port: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._env = {
            **os.environ,
            "LEVERET_AMQP_URL": amqp_url,
            "LEVERET_STORE_URL": settings.store_url,
            "LEVERET_NAMESPACE": settings.namespace,
            "LEVERET_HTTP": f"127.0.0.1:{port}",
            # A blocked broker (another test's memory alarm) is answered 503 soon.
            "LEVERET_PUBLISH_TIMEOUT": "3s",
            "PYTHONPATH": str(ROOT),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "leveret", "serve"],
                env=self._env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def up(self, http: httpx.AsyncClient) -> None:
        """Return once this run answers /ready with 200; fail if it exited."""

        async def status() -> int | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"leveret serve exited with {self.process.returncode}")
            return await readiness(http)

        await eventually(status, lambda code: code == 200, timeout=UP_TIMEOUT, what="ready")

    async def signal(self, sig: signal.Signals, timeout: float) -> int:
        """Send `sig`; the exit code once the process has exited within `timeout` seconds."""
        assert self.process is not None
        process = self.process
        process.send_signal(sig)

        async def code() -> int | None:
            return process.poll()

        exited = await eventually(
            code, lambda found: found is not None, timeout=timeout, what="leveret serve to exit"
        )
        assert exited is not None
        return exited

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Tally:
    """What the clients were told."""

    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key → job id
    answers: Counter[str] = field(default_factory=Counter)  # created/existing/refused/...
    tries: Counter[str] = field(default_factory=Counter)  # idempotency key → submits
    unclean: list[str] = field(default_factory=list)

    def line(self) -> str:
        a = self.answers
        return (
            f"{len(self.accepted)} jobs accepted ({a['created']} created, {a['existing']} "
            f"found by idempotency key after an unclear answer), {a['refused']} refused with "
            f"503, {a['connection_error']} connection errors, {len(self.unclean)} unclean"
        )


class Clients:
    """A few clients submitting `work` jobs one after another until told to stop; a job
    whose submit got no clean answer is resubmitted with the same idempotency key once the
    gateway is ready again."""

    def __init__(self, http: httpx.AsyncClient, record: Path) -> None:
        self.http = http
        self.record = record
        self.tally = Tally()
        self._stop = asyncio.Event()

    def body(self, key: str) -> dict[str, Any]:
        payload = {"record": str(self.record), "seconds": 0, "key": key}
        return {"type": "work", "payload": payload, "idempotency_key": key}

    async def run(self, name: str) -> None:
        number = 0
        while not self._stop.is_set():
            await self.submit(f"{name}-{number}")
            number += 1

    def stop(self) -> None:
        """Let every client finish the job it is on (to a clean answer), then return."""
        self._stop.set()

    async def submit(self, key: str) -> None:
        tally = self.tally
        while True:
            tally.tries[key] += 1
            try:
                answer = await self.http.post("/api/v1/jobs", json=self.body(key))
            except httpx.TransportError:
                # Down, or cut mid-request: the job may or may not exist. Ask again.
                tally.answers["connection_error"] += 1
                await until_ready(self.http)
                continue
            if answer.status_code in (200, 201) and answer.json().get("id"):
                kind = "created" if answer.status_code == 201 else "existing"
                if kind == "existing" and tally.tries[key] == 1:
                    tally.unclean.append(f"{key}: 200 for a key never used before")
                tally.answers[kind] += 1
                tally.accepted[key] = answer.json()["id"]
                return
            if is_clean_refusal(answer):
                tally.answers["refused"] += 1
                await until_ready(self.http)
                continue
            tally.unclean.append(f"{key}: {answer.status_code} {answer.text[:300]}")
            return

    async def until_accepted(self, count: int) -> None:
        async def accepted() -> int:
            return len(self.tally.accepted)

        await eventually(accepted, lambda n: n >= count, timeout=60, what=f"{count} accepted")


async def readiness(http: httpx.AsyncClient) -> int | None:
    """The status of /ready, or None when nothing answers."""
    try:
        return (await http.get("/ready", timeout=2)).status_code
    except httpx.TransportError:
        return None


async def until_ready(http: httpx.AsyncClient) -> None:
    """Wait for whichever gateway process serves the port to be ready (a client cannot
    tell one from another)."""
    await eventually(
        lambda: readiness(http), lambda code: code == 200, timeout=UP_TIMEOUT, what="ready"
    )


def is_clean_refusal(answer: httpx.Response) -> bool:
    """503 with Retry-After and the API's error body: the client knows to come back."""
    if answer.status_code != 503 or not answer.headers.get("retry-after", "").isdigit():
        return False
    try:
        return answer.json()["error"]["code"] == "unavailable"
    except (ValueError, KeyError, TypeError):
        return False


@asynccontextmanager
async def submitting(clients: Clients) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run SUBMITTERS clients for the duration of the block; on leaving, stop them and wait
    until each has a clean answer for the job it was on."""
    tasks = [asyncio.create_task(clients.run(f"c{n}")) for n in range(SUBMITTERS)]
    try:
        yield tasks
    except BaseException:  # the test failed already: do not wait on the clients too
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    clients.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 90)


async def stranded_since(store: SQLiteStore, moment: datetime) -> int:
    """How many jobs stored since `moment` wait in `scheduled` without an attempt."""
    page = await store.list(JobQuery(states=frozenset({JobState.SCHEDULED}), limit=1000))
    return sum(1 for job in page.jobs if job.created_at >= moment and job.attempt == 0)


async def make_fault(fault: str, gateway: Gateway, proxy: TcpProxy, store: SQLiteStore) -> int:
    """Stop the gateway by `fault`; how many stored jobs it left unpublished on purpose."""
    if fault == STOP:
        assert await gateway.signal(signal.SIGTERM, timeout=20) == 0
        return 0
    stranded = 0
    if fault == STALLED_KILL:
        stalled_at = utcnow()
        proxy.stall()
        stranded = await eventually(
            lambda: stranded_since(store, stalled_at),
            lambda n: n >= 1,
            what="a job stored whose publish the proxy holds",
        )
    assert await gateway.signal(signal.SIGKILL, timeout=20) == -signal.SIGKILL
    if fault == STALLED_KILL:
        proxy.cut()  # the held publishes go with the connection
        proxy.resume()
    return stranded


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    url = URL(AMQP_URL)
    opened = TcpProxy(url.host or "127.0.0.1", url.port or 5672)
    await opened.start()
    yield opened
    await opened.close()


@contextmanager
def showing_logs(gateway: Gateway, workers: list[WorkerProcess]) -> Iterator[None]:
    """On failure, attach the gateway's log and the workers' output to the error."""
    try:
        yield
    except BaseException as exc:
        exc.add_note(f"--- leveret serve ---\n{gateway.log_path.read_text(errors='replace')}")
        for worker in workers:
            exc.add_note(f"--- worker {worker.process.pid} ---\n{worker.output()}")
        raise


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_gateway_killed_and_stopped_under_load_answers_cleanly_and_runs_each_job_once(
    settings: Settings,
    store: SQLiteStore,
    session: BrokerSession,
    worker_processes: list[WorkerProcess],
    proxy: TcpProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Under continuous submits, SIGKILL the gateway three times (once right after it
    stored jobs it had not yet published), then SIGTERM it, starting it again each time:
    every answer is 201, 200 (the key's job, after an unclear answer), a clean 503 or a
    connection error; every accepted job completes, ran exactly once, and is the only job of
    its key that ran; any other job made on the way is cancelled without having run; every
    job in the store is terminal; each outage was felt by the clients; SIGTERM exits 0."""
    record = tmp_path / "runs.log"
    through_proxy = str(URL(AMQP_URL).with_host("127.0.0.1").with_port(proxy.port))
    gateway = Gateway(settings, through_proxy, free_port(), tmp_path / "gateway.log")
    work_queue = session.names.work_queue("default")
    errors_per_outage: list[int] = []
    stranded = 0
    with showing_logs(gateway, worker_processes):
        for _ in range(2):
            worker_processes.append(WorkerProcess(settings, HANDLERS, "--concurrency", "8"))
        await session.router.ensure_queue("default")
        await until_consumers(session, work_queue, 2)
        gateway.start()
        try:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
                await gateway.up(http)
                clients = Clients(http, record)
                async with submitting(clients):
                    for fault in FAULTS:
                        await clients.until_accepted(len(clients.tally.accepted) + STEP)
                        errors = clients.tally.answers["connection_error"]
                        stranded += await make_fault(fault, gateway, proxy, store)
                        gateway.start()
                        await gateway.up(http)
                        await clients.until_accepted(len(clients.tally.accepted) + STEP)
                        errors_per_outage.append(clients.tally.answers["connection_error"] - errors)
                tally = clients.tally

                # Asked again with the same key, the gateway answers with the same job.
                for key, job_id in tally.accepted.items():
                    again = await http.post("/api/v1/jobs", json=clients.body(key))
                    assert (again.status_code, again.json()["id"]) == (200, job_id), key

            assert tally.unclean == []
            assert all(n >= 1 for n in errors_per_outage), errors_per_outage

            accepted_ids = set(tally.accepted.values())

            async def finished() -> list[Job]:
                return [job for job in await all_jobs(store) if job.state not in TERMINAL_STATES]

            try:
                await eventually(finished, lambda live: not live, timeout=30, what="all terminal")
            except AssertionError as exc:
                ready, consumers = await queue_depth(session.consuming, work_queue)
                exc.add_note(f"work queue: {ready} messages ready, {consumers} consumers")
                raise
        finally:
            gateway.kill()

        stored = await all_jobs(store)
        runs = runs_by_job(read_runs(record))
        by_key: dict[str, list[Job]] = {}
        for job in stored:
            by_key.setdefault(job.payload["key"], []).append(job)
        assert set(by_key) == set(tally.accepted)  # no job the clients never asked for
        for key, jobs in by_key.items():
            for job in jobs:
                if job.id == tally.accepted[key]:
                    assert job.state is JobState.COMPLETED, job
                    assert [run.attempt for run in runs.get(job.id, [])] == [1], job
                else:  # made by a submit whose answer never came or was a 503
                    assert job.state is JobState.CANCELLED, job
                    assert job.started_at is None, job
                    assert job.id not in runs, job  # no duplicate run
        assert set(runs) == accepted_ids
        states = Counter(job.state for job in stored)

    with capsys.disabled():
        print(
            f"\n[faults] gateway SIGKILL + SIGTERM restarts under load: {tally.line()}; "
            f"{errors_per_outage} connection errors per outage; {stranded} stored jobs left "
            "unpublished by a kill; store: "
            f"{states[JobState.COMPLETED]} completed, {states[JobState.CANCELLED]} cancelled"
        )
