"""The raw aio-pika ceiling: the fastest way aio-pika moves the same messages with confirms.

One publisher connection publishes N persistent messages, as large as a no-op job's, with
publisher confirms, keeping a window of them unconfirmed (pipelined); consumer processes
(bench/drain.py), one connection each, prefetch 200, ack every message; no store, no
envelope codec, a plain durable queue. It runs with one consumer process and with as many
as Leveret has workers, and the faster counts: a ceiling is the best aio-pika can do here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import aio_pika
import msgspec

from bench.cpu import CpuMeter
from bench.cpu import describe as describe_cpu
from bench.drain import Tally
from bench.message import RawMessages
from bench.plan import Plan
from bench.processes import BenchError, Child, stop_all, until_consumers
from bench.results import Latency, Result
from bench.sandbox import CEILING_QUEUE, Sandbox
from bench.window import in_window


class _Drains:
    """The raw consumer processes and the count of messages they acked so far."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.acked = [0] * len(children)
        self.changed = asyncio.Event()

    async def follow(self, index: int) -> None:
        """Read one child's progress lines until it closes its stdout."""
        stream = self.children[index].process.stdout
        assert stream is not None
        async for line in stream:
            word, _, count = line.decode().partition(" ")
            if word == "acked":
                self.acked[index] = int(count)
                self.changed.set()

    async def until_acked(self, total: int, limit: float) -> None:
        """Return once `total` messages are acked in all; BenchError after `limit` seconds."""
        try:
            async with asyncio.timeout(limit):
                while sum(self.acked) < total:
                    self.changed.clear()
                    for child in self.children:
                        child.check()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.changed.wait(), 1.0)
        except TimeoutError:
            raise BenchError(f"ceiling: {sum(self.acked)} of {total} acked in time") from None


@contextlib.asynccontextmanager
async def _drains(sandbox: Sandbox, queue: str, consumers: int) -> AsyncIterator[_Drains]:
    plan = sandbox.plan
    children: list[Child] = []
    followers: list[asyncio.Task[None]] = []
    try:
        for index in range(consumers):
            out = sandbox.directory / f"drain{index + 1}.msgpack"
            args = ["-m", "bench.drain", queue, str(plan.ceiling_prefetch), str(out)]
            children.append(
                await Child.start(f"drain{index + 1}", args, sandbox=sandbox, pipe_stdout=True)
            )
        drains = _Drains(children)
        followers = [asyncio.create_task(drains.follow(i)) for i in range(len(children))]
        await until_consumers(sandbox, children, consumers, queue=queue)
        yield drains
    finally:
        await stop_all(children)
        await asyncio.gather(*followers, return_exceptions=True)


async def run_ceiling(plan: Plan) -> Result:
    """The ceiling: with `--ceiling-consumers` as asked, else with one consumer process and
    with as many as there are workers, keeping the faster (on a small machine one consumer
    often wins: each extra process takes CPU from the publisher)."""
    shapes = [plan.ceiling_consumers] if plan.ceiling_consumers else sorted({1, plan.workers})
    runs = [await _ceiling(plan, consumers) for consumers in shapes]
    best = max(runs, key=lambda r: r.end_to_end_rate or 0.0)
    if len(runs) == 1:
        return best
    others = [
        f"with {r.extra['consumers']} consumer(s): {r.end_to_end_rate or 0:,.0f}/s end-to-end"
        for r in runs
        if r is not best
    ]
    return dataclasses.replace(
        best,
        notes=(*best.notes, f"the faster of {len(runs)} shapes; " + "; ".join(others)),
        extra={**best.extra, "runs": [r.as_dict() for r in runs]},
    )


async def _ceiling(plan: Plan, consumers: int) -> Result:
    """Publish and consume `plan.jobs` raw messages with `consumers` consumer processes;
    rates, and latency from each message's publish time to its ack."""
    async with Sandbox(plan, "ceiling") as sandbox:
        queue = sandbox.names.work_queue(CEILING_QUEUE)
        messages = RawMessages()
        connection = await aio_pika.connect(plan.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.declare_queue(queue, durable=True)
            exchange = channel.default_exchange
            async with _drains(sandbox, queue, consumers) as drains:
                meter = CpuMeter({"consumers": [child.pid for child in drains.children]})
                meter.start()
                published = await in_window(
                    lambda: exchange.publish(messages.make(), queue), plan.jobs, plan.window
                )
                if published.failures:
                    raise BenchError(f"ceiling: publish failed: {published.failures[0]!r}")
                await drains.until_acked(plan.jobs, plan.finish_timeout)
                cpu = meter.per_job(plan.jobs)
        tallies = [
            msgspec.msgpack.decode(
                (sandbox.directory / f"drain{i + 1}.msgpack").read_bytes(), type=Tally
            )
            for i in range(consumers)
        ]
    latencies = [ms for tally in tallies for ms in tally.latencies_ms]
    last_ack = max(tally.last_ack for tally in tallies)
    return Result(
        scenario="ceiling",
        jobs=sum(tally.acked for tally in tallies),
        submit_rate=published.rate,
        end_to_end_rate=plan.jobs / (last_ack - published.started),
        latency=Latency.of(latencies),
        notes=(
            f"raw aio-pika, {messages.size}-byte persistent messages, confirms in a window of "
            f"{plan.window}; {consumers} consumer process(es), prefetch "
            f"{plan.ceiling_prefetch}, ack each; no store",
            describe_cpu(cpu),
        ),
        extra={
            "consumers": consumers,
            "first_publish": published.started,
            "last_confirm": published.finished,
            "last_ack": last_ack,
            "acked_per_consumer": [tally.acked for tally in tallies],
            "cpu_ms_per_job": cpu,
        },
    )
