"""The scenarios that submit through Leveret's Python Producer: `amqp` (as fast as it
goes) and `latency` (paced at a quarter of amqp's rate)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from bench.completion import Timings, timings, until_finished
from bench.cpu import CpuMeter
from bench.cpu import describe as describe_cpu
from bench.handlers import NOOP
from bench.plan import Plan
from bench.processes import BenchError, worker_fleet
from bench.profiling import profiled
from bench.results import Latency, Result
from bench.sandbox import Sandbox
from bench.window import Outcome, in_window, paced
from leveret.broker import BrokerSession, Producer
from leveret.jobs import DEFAULT_QUEUE
from leveret.jobs.store import store_from_url
from leveret.jobs.submission import Submission

Submit = Callable[[Producer], Awaitable[Outcome]]


async def run_amqp(plan: Plan) -> Result:
    """`plan.jobs` no-op jobs through the Producer as fast as a window lets them go."""
    if plan.batch > 0:
        calls = math.ceil(plan.jobs / plan.batch)
        window = max(1, plan.window // plan.batch)
        how = f"Producer.submit_many, {plan.batch} jobs a call, {window} calls in flight"
        batch = [Submission(type=NOOP)] * plan.batch

        def submit_all(producer: Producer) -> Awaitable[Outcome]:
            return in_window(lambda: producer.submit_many(batch), calls, window)

        count = calls * plan.batch
    else:
        how = f"Producer.submit, {plan.window} in flight"

        def submit_all(producer: Producer) -> Awaitable[Outcome]:
            return in_window(lambda: producer.submit(NOOP), plan.jobs, plan.window)

        count = plan.jobs
    outcome, finished, cpu = await _through_producer(plan, "amqp", count, submit_all)
    submitted = outcome.succeeded * max(1, plan.batch)
    return _result("amqp", plan, outcome, finished, submitted / _span(outcome), how, cpu)


async def run_latency(plan: Plan, rate: float) -> Result:
    """A quarter of `plan.jobs` no-op jobs through the Producer, one every 1/`rate` s."""
    count = plan.latency_jobs

    def submit_all(producer: Producer) -> Awaitable[Outcome]:
        return paced(lambda: producer.submit(NOOP), count, rate)

    outcome, finished, cpu = await _through_producer(plan, "latency", count, submit_all)
    how = f"Producer.submit paced at {rate:,.0f}/s"
    return _result("latency", plan, outcome, finished, outcome.rate, how, cpu, rate=rate)


async def _through_producer(
    plan: Plan, scenario: str, count: int, submit_all: Submit
) -> tuple[Outcome, Timings, dict[str, float]]:
    async with Sandbox(plan, scenario) as sandbox:
        store = store_from_url(sandbox.settings.store_url)
        await store.open()
        try:
            async with BrokerSession.open(sandbox.settings, name="leveret-bench") as session:
                await session.router.ensure_queue(DEFAULT_QUEUE)
                producer = Producer(store, session)
                async with worker_fleet(sandbox, scenario) as fleet:
                    meter = CpuMeter({"workers": [child.pid for child in fleet]})
                    meter.start()
                    with profiled(plan.profile, f"{scenario}-producer"):
                        outcome = await submit_all(producer)
                    if outcome.failures:
                        raise BenchError(f"{scenario}: submit failed: {outcome.failures[0]!r}")
                    await until_finished(store, count, limit=plan.finish_timeout, watch=fleet)
                    cpu = meter.per_job(count)
            return outcome, await timings(store), cpu
        finally:
            await store.close()


def _span(outcome: Outcome) -> float:
    return max(outcome.finished - outcome.started, 1e-9)


def _result(
    scenario: str,
    plan: Plan,
    outcome: Outcome,
    finished: Timings,
    submit_rate: float,
    how: str,
    cpu: dict[str, float],
    *,
    rate: float | None = None,
) -> Result:
    total = finished.completed + finished.other
    return Result(
        scenario=scenario,
        jobs=finished.completed,
        submit_rate=submit_rate,
        end_to_end_rate=total / max(finished.last_completion - outcome.started, 1e-9),
        latency=Latency.of(finished.latencies_ms),
        errors=finished.other,
        notes=(how, plan.workers_note, describe_cpu(cpu)),
        extra={
            "first_submit": outcome.started,
            "last_submit": outcome.finished,
            "last_completion": finished.last_completion,
            "paced_rate": rate,
            "cpu_ms_per_job": cpu,
        },
    )
