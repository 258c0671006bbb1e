"""Handlers: timeouts, bad results, plain functions, unknown types, dependencies."""

from __future__ import annotations

import asyncio
import threading

from leveret.broker import Producer
from leveret.jobs import JobState, Settings
from leveret.jobs.store import SQLiteStore
from leveret.workers import JobContext, Worker
from tests.integration.conftest import job_state, running, until_finished, until_state


async def test_handler_past_its_timeout_is_stopped_and_retried(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    cancelled = asyncio.Event()
    worker = Worker()

    @worker.handler("hang", timeout=0.3, max_attempts=1)
    async def hang(ctx: JobContext, payload: object) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = await producer.submit("hang")
    async with running(worker, settings):
        done = await until_finished(store, job.id)

    assert done.state is JobState.DEAD_LETTER
    assert done.error_category == "timeout"
    assert done.last_error == "timed out after 0.3s"
    assert cancelled.is_set()


async def test_unserialisable_result_fails_the_job_not_the_worker(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    worker = Worker()

    @worker.handler("weird")
    async def weird(ctx: JobContext, payload: object) -> object:
        return object()

    bad = await producer.submit("weird")
    async with running(worker, settings):
        done = await until_finished(store, bad.id)

    assert done.state is JobState.FAILED
    assert done.error_category == "unserialisable"
    assert done.last_error is not None
    assert "not serialisable" in done.last_error


async def test_plain_function_runs_in_a_thread_pool(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    threads: list[str] = []
    worker = Worker()

    @worker.handler("blocking")
    def blocking(ctx: JobContext, payload: int) -> int:
        threads.append(threading.current_thread().name)
        ctx.progress(50)
        return payload * 2

    job = await producer.submit("blocking", 21)
    async with running(worker, settings):
        done = await until_state(store, job.id, JobState.COMPLETED)

    assert done.result == 42
    assert len(threads) == 1
    assert threads[0].startswith("leveret-job")


async def test_demo_fib_is_cpu_bound_and_correct(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    from leveret.cli.demo import worker

    job = await producer.submit("fib", {"n": 20})
    async with running(worker, settings):
        done = await until_state(store, job.id, JobState.COMPLETED)
    assert done.result == 6765


async def test_job_without_a_handler_fails_permanently(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    from leveret.cli.demo import worker

    job = await producer.submit("nobody-handles-this", max_attempts=5)
    async with running(worker, settings):
        done = await until_finished(store, job.id)
    assert done.state is JobState.FAILED
    assert done.error_category == "no_handler"
    assert done.attempt == 1


async def test_dependent_job_waits_for_its_dependencies(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    order: list[str] = []
    worker = Worker()

    @worker.handler("step")
    async def step(ctx: JobContext, payload: str) -> None:
        order.append(payload)

    first = await producer.submit("step", "first", delay=0.5)
    second = await producer.submit("step", "second")
    last = await producer.submit("step", "last", depends_on=[first.id, second.id])
    assert last.state is JobState.PENDING
    async with running(worker, settings):
        await until_state(store, last.id, JobState.COMPLETED)

    assert order[-1] == "last"
    assert sorted(order[:2]) == ["first", "second"]


async def test_dependent_of_a_failed_job_is_cancelled(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    from leveret.cli.demo import worker

    doomed = await producer.submit("reject", {})
    after = await producer.submit("echo", "never", depends_on=[doomed.id])
    async with running(worker, settings):
        done = await until_finished(store, after.id)

    assert done.state is JobState.CANCELLED
    assert done.last_error == f"dependency {doomed.id} ended failed"
    assert (await job_state(store, doomed.id)).state is JobState.FAILED


async def test_cancelling_a_running_job_stops_its_handler(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    from leveret.cli.demo import worker

    job = await producer.submit("sleep", {"seconds": 60}, max_attempts=3)
    async with running(worker, settings):
        await until_state(store, job.id, JobState.RUNNING)
        assert worker.cancel_job(job.id)
        done = await until_finished(store, job.id, timeout=5)
        assert not worker.cancel_job(job.id)  # nothing of it runs any more

    assert done.state is JobState.CANCELLED
    assert done.attempt == 1  # not retried
    assert done.last_error == "cancelled while running"


async def test_unserialisable_checkpoint_fails_the_job_cleanly(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    worker = Worker()

    @worker.handler("odd")
    async def odd(ctx: JobContext, payload: object) -> str:
        ctx.save_checkpoint(object())  # msgpack cannot carry an arbitrary object
        return "fine"

    job = await producer.submit("odd")
    async with running(worker, settings):
        done = await until_finished(store, job.id)

    assert done.state is JobState.FAILED
    assert done.error_category == "unserialisable"
    assert done.checkpoint is None


async def test_progress_refuses_a_step_count_where_its_message_goes(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    worker = Worker()

    @worker.handler("steps", max_attempts=1)
    async def steps(ctx: JobContext, payload: object) -> str:
        ctx.progress(50, "half")  # the usual call is fine
        ctx.progress(3, 10)  # type: ignore[arg-type]  # step 3 of 10: a mistake, refused
        return "unreachable"

    job = await producer.submit("steps")
    async with running(worker, settings):
        done = await until_finished(store, job.id)

    assert done.state is JobState.DEAD_LETTER
    assert done.progress_message == "half"  # never the 10
    assert done.last_error is not None
    assert "progress message must be a string, not int" in done.last_error
    assert "ctx.progress(100 * i / n)" in done.last_error
