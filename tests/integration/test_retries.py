"""Retries through the delay tiers, dead-lettering, and the DLQ."""

from __future__ import annotations

import dataclasses
import itertools
import time

from leveret.broker import BrokerSession, Producer
from leveret.broker.actions import JobActions
from leveret.jobs import Backoff, JobState, Settings
from leveret.jobs.envelope import REASON_HEADER
from leveret.jobs.store import SQLiteStore
from leveret.workers import JobContext, Worker
from tests.conditions import eventually
from tests.integration.conftest import depth, running, until_finished


async def test_job_failing_twice_then_succeeding_follows_its_backoff(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    started: list[float] = []
    worker = Worker()

    @worker.handler("flaky")
    async def flaky(ctx: JobContext, payload: object) -> dict[str, int]:
        started.append(time.monotonic())
        if ctx.attempt < 3:
            raise RuntimeError(f"boom {ctx.attempt}")
        return {"attempt": ctx.attempt}

    backoff = Backoff(initial=0.4, multiplier=2, jitter=False)
    job = await producer.submit("flaky", max_attempts=5, backoff=backoff)
    async with running(worker, settings):
        done = await until_finished(store, job.id)

    assert done.state is JobState.COMPLETED
    assert done.attempt == 3
    assert done.result == {"attempt": 3}
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert len(gaps) == 2
    # Never early; late only by the delay tiers' granularity and a little scheduling.
    assert 0.4 <= gaps[0] < 0.4 + 1.0, gaps
    assert 0.8 <= gaps[1] < 0.8 + 1.0, gaps


async def test_always_failing_job_is_dead_lettered_with_its_last_error(
    settings: Settings, store: SQLiteStore, producer: Producer, session: BrokerSession
) -> None:
    worker = Worker()

    @worker.handler("doomed")
    async def doomed(ctx: JobContext, payload: object) -> None:
        raise ValueError(f"bad input on attempt {ctx.attempt}")

    job = await producer.submit(
        "doomed", max_attempts=3, backoff=Backoff(initial=0.1, jitter=False)
    )
    async with running(worker, settings):
        done = await until_finished(store, job.id)

    assert done.state is JobState.DEAD_LETTER
    assert done.attempt == 3
    assert done.last_error == "ValueError: bad input on attempt 3"
    dlq = session.names.dead_letter_queue("default")
    await eventually(lambda: depth(session, dlq), lambda n: n == 1, what="one message in the DLQ")
    channel = await session.consuming.channel()
    queue = await channel.get_queue(dlq)
    message = await queue.get(fail=True)
    assert message is not None
    assert message.message_id == job.id
    assert "bad input on attempt 3" in str(message.headers[REASON_HEADER])
    await message.ack()
    await channel.close()


async def test_rejected_job_fails_at_once_without_retry(
    settings: Settings, store: SQLiteStore, producer: Producer, session: BrokerSession
) -> None:
    from leveret.cli.demo import worker

    job = await producer.submit("reject", {"reason": "not for us"}, max_attempts=5)
    async with running(worker, settings):
        done = await until_finished(store, job.id)

    assert done.state is JobState.FAILED
    assert done.attempt == 1
    assert done.last_error == "not for us"
    dlq = session.names.dead_letter_queue("default")
    await eventually(lambda: depth(session, dlq), lambda n: n == 1, what="one message in the DLQ")


async def test_retried_job_comes_back_only_to_its_own_queue(
    settings: Settings, store: SQLiteStore, producer: Producer, session: BrokerSession
) -> None:
    seen: list[tuple[str, int]] = []
    alpha, beta = Worker(), Worker()

    @alpha.handler("probe")
    async def probe_alpha(ctx: JobContext, payload: object) -> None:
        seen.append(("alpha", ctx.attempt))
        if ctx.attempt < 3:
            raise RuntimeError("again")

    @beta.handler("probe")
    async def probe_beta(ctx: JobContext, payload: object) -> None:
        seen.append(("beta", ctx.attempt))

    await session.router.ensure_queue("beta")
    job = await producer.submit("probe", queue="alpha", backoff=Backoff(initial=0.1, jitter=False))
    alpha_settings = dataclasses.replace(settings, queues=("alpha",))
    beta_settings = dataclasses.replace(settings, queues=("beta",))
    async with running(alpha, alpha_settings), running(beta, beta_settings):
        done = await until_finished(store, job.id)

    assert done.state is JobState.COMPLETED
    assert seen == [("alpha", 1), ("alpha", 2), ("alpha", 3)]
    assert await depth(session, session.names.work_queue("beta")) == 0
    assert await depth(session, session.names.dead_letter_queue("beta")) == 0


async def test_retry_with_explicit_delay_and_checkpoint(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    from leveret.jobs import Retry

    seen: list[object] = []
    worker = Worker()

    @worker.handler("resumable")
    async def resumable(ctx: JobContext, payload: object) -> object:
        seen.append(ctx.checkpoint)
        if ctx.attempt == 1:
            ctx.progress(50, "half way")
            ctx.save_checkpoint({"done": 5})
            raise Retry("try later", delay=0.2)
        return ctx.checkpoint

    job = await producer.submit("resumable")
    async with running(worker, settings):
        done = await until_finished(store, job.id)

    assert done.state is JobState.COMPLETED
    assert seen == [None, {"done": 5}]
    assert done.result == {"done": 5}
    assert done.progress == 100.0


async def test_a_job_cancelled_before_it_ran_keeps_its_handlers_attempts_when_retried(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    """Submitted without max_attempts, a job gets its handler's default at its first run. One
    cancelled before that run and then retried still gets that default, not a single attempt."""
    seen: list[int] = []
    worker = Worker()

    @worker.handler("probe", max_attempts=3, backoff=Backoff(initial=0.1, jitter=False))
    async def probe(ctx: JobContext, payload: object) -> None:
        seen.append(ctx.attempt)
        if ctx.attempt < 3:
            raise RuntimeError("again")

    job = await producer.submit("probe", delay=3600.0)  # waits in a tier, never run
    actions = JobActions(producer)
    await actions.cancel(job.id)
    retried = await actions.retry(job.id)
    assert retried.max_attempts is None  # still the handler's to decide
    async with running(worker, settings):
        done = await until_finished(store, job.id)

    assert (done.state, done.attempt, done.max_attempts) == (JobState.COMPLETED, 3, 3), done
    assert seen == [1, 2, 3]


async def test_a_retried_job_starts_again_from_no_progress(
    settings: Settings, store: SQLiteStore, producer: Producer
) -> None:
    """The progress a failed run reported is not shown for the retry that follows it."""
    worker = Worker()

    @worker.handler("halfway")
    async def halfway(ctx: JobContext, payload: object) -> None:
        ctx.progress(40, "copied 4 of 10")
        raise RuntimeError("disk full")

    job = await producer.submit("halfway", max_attempts=1)
    async with running(worker, settings):
        failed = await until_finished(store, job.id)
    assert (failed.progress, failed.progress_message) == (40.0, "copied 4 of 10"), failed

    retried = await JobActions(producer).retry(job.id)
    assert (retried.progress, retried.progress_message) == (None, None), retried
