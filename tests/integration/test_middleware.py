"""The middleware seam: every hook, in order, for each way a job can end; and a middleware
that breaks loses no job."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from leveret.broker import BrokerSession, Producer, Publish
from leveret.broker.actions import JobActions
from leveret.jobs import Backoff, JobState, Settings
from leveret.jobs.store import SQLiteStore
from leveret.workers import JobContext, Worker
from leveret.workers.middleware import CallNext, Middleware, Settlement
from leveret.workers.outcomes import Outcome
from tests.conditions import eventually
from tests.integration.conftest import running, until_finished

Record = tuple[Any, ...]


class Recorder(Middleware):
    """Writes down every hook as it runs, per job, with what it was given."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Record]] = {}

    async def of(self, job_id: str) -> list[Record]:
        """What was recorded of `job_id` so far (a probe for `eventually`)."""
        return list(self.calls.get(job_id, []))

    def _note(self, job_id: str | None, *record: Any) -> None:
        assert job_id is not None
        self.calls.setdefault(job_id, []).append(record)

    async def on_publish(self, publish: Publish) -> None:
        self._note(publish.job_id, "publish", str(publish.reason), publish.attempt)

    async def on_claim(self, job: Any) -> None:
        self._note(job.id, "claim", job.attempt, str(job.state))

    async def around_handler(self, ctx: JobContext, call_next: CallNext) -> Outcome:
        self._note(ctx.id, "handler", ctx.attempt)
        outcome = await call_next()
        self._note(ctx.id, "handled", ctx.attempt, type(outcome).__name__)
        return outcome

    async def on_settle(self, settlement: Settlement) -> None:
        stored = settlement.stored
        self._note(
            settlement.job.id,
            "settle",
            settlement.job.attempt,
            str(settlement.decision.action),
            str(stored.state) if stored is not None else None,
        )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def recorded_producer(
    settings: Settings, store: SQLiteStore, recorder: Recorder
) -> AsyncIterator[Producer]:
    """A producer whose publishes pass the same recorder, as a worker's own would."""
    async with BrokerSession.open(settings, name="recorded", hooks=[recorder]) as session:
        yield Producer(store, session)


def worker_with(*middleware: Middleware) -> Worker:
    worker = Worker(middleware=list(middleware))

    @worker.handler("ok")
    async def ok(ctx: JobContext, payload: Any) -> str:
        return "done"

    @worker.handler("flaky")
    async def flaky(ctx: JobContext, payload: Any) -> int:
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        return ctx.attempt

    @worker.handler("doomed")
    async def doomed(ctx: JobContext, payload: Any) -> None:
        raise ValueError("never works")

    @worker.handler("slow")
    async def slow(ctx: JobContext, payload: Any) -> None:
        await asyncio.sleep(60)

    return worker


# A retry that may start at once goes straight back to the work queue (no delay-tier hop),
# and a worker running one job at a time settles an attempt before it claims the next: so
# the order of hooks is the same on every run.
AT_ONCE = Backoff(initial=0, jitter=False)


def one_at_a_time(settings: Settings) -> Settings:
    return dataclasses.replace(settings, concurrency=1)


async def test_every_hook_in_order_for_a_job_that_completes(
    settings: Settings, store: SQLiteStore, recorder: Recorder, recorded_producer: Producer
) -> None:
    job = await recorded_producer.submit("ok")
    async with running(worker_with(recorder), one_at_a_time(settings)):
        done = await until_finished(store, job.id)
    assert done.state is JobState.COMPLETED
    assert recorder.calls[job.id] == [
        ("publish", "submit", 1),
        ("claim", 1, "running"),
        ("handler", 1),
        ("handled", 1, "Returned"),
        ("settle", 1, "ack", "completed"),
    ]


async def test_every_hook_in_order_for_a_job_that_retries_then_completes(
    settings: Settings, store: SQLiteStore, recorder: Recorder, recorded_producer: Producer
) -> None:
    job = await recorded_producer.submit("flaky", max_attempts=3, backoff=AT_ONCE)
    async with running(worker_with(recorder), one_at_a_time(settings)):
        done = await until_finished(store, job.id)
    assert done.state is JobState.COMPLETED
    assert recorder.calls[job.id] == [
        ("publish", "submit", 1),
        ("claim", 1, "running"),
        ("handler", 1),
        ("handled", 1, "AttemptFailed"),
        ("publish", "retry", 2),  # the next attempt goes out before this one is settled
        ("settle", 1, "retry", "retrying"),
        ("claim", 2, "running"),
        ("handler", 2),
        ("handled", 2, "Returned"),
        ("settle", 2, "ack", "completed"),
    ]


async def test_every_hook_in_order_for_a_job_that_is_dead_lettered(
    settings: Settings, store: SQLiteStore, recorder: Recorder, recorded_producer: Producer
) -> None:
    job = await recorded_producer.submit("doomed", max_attempts=1)
    async with running(worker_with(recorder), one_at_a_time(settings)):
        done = await until_finished(store, job.id)
    assert done.state is JobState.DEAD_LETTER
    assert recorder.calls[job.id] == [
        ("publish", "submit", 1),
        ("claim", 1, "running"),
        ("handler", 1),
        ("handled", 1, "AttemptFailed"),
        ("publish", "dead_letter", 1),  # its copy in the DLQ
        ("settle", 1, "dead_letter", "dead_letter"),
    ]


async def test_every_hook_in_order_for_a_job_cancelled_while_running(
    settings: Settings, store: SQLiteStore, recorder: Recorder, recorded_producer: Producer
) -> None:
    job = await recorded_producer.submit("slow")
    async with running(worker_with(recorder), one_at_a_time(settings)):
        await eventually(
            lambda: recorder.of(job.id),
            lambda calls: ("handler", 1) in calls,
            what="the slow handler to start",
        )
        await JobActions(recorded_producer).cancel(job.id, "not needed")
        done = await until_finished(store, job.id)
        await eventually(
            lambda: recorder.of(job.id),
            lambda calls: calls[-1][0] == "settle",
            what="the cancelled attempt to settle",
        )
    assert done.state is JobState.CANCELLED
    assert recorder.calls[job.id] == [
        ("publish", "submit", 1),
        ("claim", 1, "running"),
        ("handler", 1),
        ("handled", 1, "Interrupted"),
        # The cancel was recorded first, so the worker's own write is refused: nothing stored.
        ("settle", 1, "ack", None),
    ]


class Broken(Middleware):
    """Raises in every hook but around_handler, which fails only when asked to."""

    def __init__(self, *, around: bool) -> None:
        self.around = around

    async def on_publish(self, publish: Publish) -> None:
        raise RuntimeError("on_publish broke")

    async def on_claim(self, job: Any) -> None:
        raise RuntimeError("on_claim broke")

    async def around_handler(self, ctx: JobContext, call_next: CallNext) -> Outcome:
        if self.around:
            raise RuntimeError("around_handler broke")
        return await call_next()

    async def on_settle(self, settlement: Settlement) -> None:
        raise RuntimeError("on_settle broke")


async def test_a_middleware_that_raises_outside_the_handler_loses_no_job(
    settings: Settings, store: SQLiteStore
) -> None:
    broken = Broken(around=False)
    async with BrokerSession.open(settings, name="broken", hooks=[broken]) as session:
        job = await Producer(store, session).submit("flaky", max_attempts=2, backoff=AT_ONCE)
        async with running(worker_with(broken), settings):
            done = await until_finished(store, job.id)
    assert done.state is JobState.COMPLETED
    assert done.attempt == 2  # its retry was published past the broken hook too


async def test_a_middleware_that_raises_around_the_handler_fails_the_attempt(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    job = await producer.submit("ok", max_attempts=2, backoff=AT_ONCE)
    async with running(worker_with(Broken(around=True)), settings):
        done = await until_finished(store, job.id)
    assert done.state is JobState.DEAD_LETTER
    assert done.attempt == 2
    assert done.error_category == "middleware"
    assert done.last_error == "middleware failed: RuntimeError: around_handler broke"


REQUEST = contextvars.ContextVar[str]("request", default="unset")


class Scoped(Middleware):
    """Sets a context variable for the handler (as a tracer sets the current span), and
    adds a header to every message that carries the job."""

    def __init__(self) -> None:
        self.headers_seen: list[dict[str, Any]] = []

    async def on_publish(self, publish: Publish) -> None:
        self.headers_seen.append(dict(publish.headers))
        publish.headers.setdefault("origin", "scoped-test")

    async def around_handler(self, ctx: JobContext, call_next: CallNext) -> Outcome:
        token = REQUEST.set(f"job {ctx.id} attempt {ctx.attempt}")
        try:
            return await call_next()
        finally:
            REQUEST.reset(token)


async def test_a_handler_sees_the_context_its_middleware_set_and_headers_travel(
    settings: Settings, store: SQLiteStore
) -> None:
    scoped = Scoped()
    worker = Worker(middleware=[scoped])

    @worker.handler("plain")
    def plain(ctx: JobContext, payload: Any) -> str:  # runs in a thread
        if ctx.attempt == 1:
            raise RuntimeError("again")
        return REQUEST.get()

    async with BrokerSession.open(settings, name="scoped", hooks=[scoped]) as session:
        job = await Producer(store, session).submit("plain", max_attempts=2, backoff=AT_ONCE)
        async with running(worker, settings):
            done = await until_finished(store, job.id)
    assert done.state is JobState.COMPLETED
    assert done.result == f"job {job.id} attempt 2"
    submit, retry = scoped.headers_seen
    assert "origin" not in submit
    assert retry["origin"] == "scoped-test"  # a retry keeps the headers its job came with
