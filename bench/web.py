"""The scenarios that submit over HTTP: `http` (Leveret's gateway, `leveret serve`) and
`bare` (bench/bare.py, the publish-only reference). Both run the same M workers and the same
load generator (bench/load.py) in its own process."""

from __future__ import annotations

import asyncio
import socket

import httpx
import msgspec

from bench.completion import Timings, timings, until_finished
from bench.cpu import CpuMeter
from bench.cpu import describe as describe_cpu
from bench.load import Load
from bench.plan import Plan
from bench.processes import BenchError, Child, worker_fleet
from bench.results import Latency, Result
from bench.sandbox import Sandbox
from leveret.broker import connect
from leveret.broker.declare import declare
from leveret.jobs import DEFAULT_QUEUE
from leveret.jobs.store import store_from_url
from leveret.topology import QueueOptions, full_topology

HOST = "127.0.0.1"
READY_TIMEOUT = 60.0


async def run_http(plan: Plan) -> Result:
    """`plan.jobs` single-job POSTs to the gateway's /api/v1/jobs while M workers run them."""
    async with Sandbox(plan, "http") as sandbox:
        address = f"{HOST}:{_free_port()}"
        profile = None if plan.profile is None else plan.profile / "http-gateway.prof"
        args = ["-m", "leveret", "serve", "--http", address, "--log-level", "WARNING"]
        server = await Child.start("gateway", args, sandbox=sandbox, profile=profile)
        try:
            await _until_ready(server, f"http://{address}/ready")
            load, finished, cpu = await _load_and_finish(
                sandbox, server, f"http://{address}/api/v1/jobs"
            )
        finally:
            await server.stop()
            server.report_complaints()
    errors = load.refused + finished.other
    return Result(
        scenario="http",
        jobs=finished.completed,
        submit_rate=load.rate,
        end_to_end_rate=(finished.completed + finished.other)
        / max(finished.last_completion - load.started, 1e-9),
        latency=Latency.of(finished.latencies_ms),
        errors=errors,
        notes=(
            f"`leveret serve` (one process) ← bench/load.py ({plan.http_client} client, "
            f"{plan.http_concurrency} requests in flight): POST /api/v1/jobs, one job each",
            plan.workers_note,
            describe_cpu(cpu),
        ),
        extra={**_load_extra(load, finished.last_completion), "cpu_ms_per_job": cpu},
    )


async def run_bare(plan: Plan) -> Result:
    """The same load against the bare publish-only endpoint; the same workers run the jobs
    (recording each in the store on first delivery, as they do any job published straight
    over AMQP), so that the gateway and the bare app compete with the same consumers."""
    async with Sandbox(plan, "bare") as sandbox:
        connection = await connect(plan.amqp_url, name="leveret-bench/declare")
        try:
            topology = full_topology(sandbox.names, (DEFAULT_QUEUE,), QueueOptions())
            await declare(connection, topology)
        finally:
            await connection.close()
        address = f"{HOST}:{_free_port()}"
        args = ["-m", "bench.bare", address]
        profile = None if plan.profile is None else plan.profile / "bare-server.prof"
        server = await Child.start("bare", args, sandbox=sandbox, profile=profile)
        try:
            await _until_ready(server, f"http://{address}/ready")
            load, finished, cpu = await _load_and_finish(sandbox, server, f"http://{address}/jobs")
        finally:
            await server.stop()
            server.report_complaints()
    return Result(
        scenario="bare",
        jobs=finished.completed,
        submit_rate=load.rate,
        end_to_end_rate=(finished.completed + finished.other)
        / max(finished.last_completion - load.started, 1e-9),
        latency=None,  # the store only hears of a job when its worker does
        errors=load.refused + finished.other,
        notes=(
            "bare Litestar POST: confirmed, mandatory publish only (no store), uvicorn as "
            "the gateway; same load generator",
            plan.workers_note + "; workers record each job on first delivery",
            describe_cpu(cpu),
        ),
        extra={**_load_extra(load, finished.last_completion), "cpu_ms_per_job": cpu},
    )


async def _load_and_finish(
    sandbox: Sandbox, server: Child, url: str
) -> tuple[Load, Timings, dict[str, float]]:
    plan = sandbox.plan
    store = store_from_url(sandbox.settings.store_url)
    await store.open()
    try:
        async with worker_fleet(sandbox, sandbox.scenario) as fleet:
            meter = CpuMeter({"workers": [c.pid for c in fleet], server.name: [server.pid]})
            meter.start()
            load = await _generate(sandbox, url)
            if not load.accepted:
                raise BenchError(f"{sandbox.scenario}: no request accepted: {load.errors[:3]}")
            await until_finished(
                store, load.accepted, limit=plan.finish_timeout, watch=[*fleet, server]
            )
            cpu = meter.per_job(load.accepted)
            cpu["load"] = round(load.cpu * 1000 / load.accepted, 3)
        return load, await timings(store), cpu
    finally:
        await store.close()


async def _generate(sandbox: Sandbox, url: str) -> Load:
    plan = sandbox.plan
    args = ["-m", "bench.load", url, str(plan.jobs), str(plan.http_concurrency)]
    args.append(plan.http_client)
    child = await Child.start("load", args, sandbox=sandbox, pipe_stdout=True)
    assert child.process.stdout is not None
    try:
        output = await asyncio.wait_for(child.process.stdout.read(), plan.finish_timeout)
    except TimeoutError:
        raise BenchError(f"{sandbox.scenario}: the load generator took too long") from None
    finally:
        code = await child.stop()
    if code != 0 or not output:
        raise BenchError(f"load generator exited with {code}: {child.tail()}")
    return msgspec.json.decode(output, type=Load)


async def _until_ready(server: Child, url: str) -> None:
    async with httpx.AsyncClient(timeout=2.0) as client:
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                while True:
                    server.check()
                    try:
                        if (await client.get(url)).status_code == 200:
                            return
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise BenchError(f"{server.name} not ready within {READY_TIMEOUT:g}s") from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _load_extra(load: Load, last_completion: float) -> dict[str, object]:
    return {
        "first_request": load.started,
        "last_answer": load.finished,
        "last_completion": last_completion,
        "statuses": load.statuses,
    }
