"""`python -m bench`: run the scenarios, print the table (or JSON). Exit 0 unless something
crashed; a missed target is a finding, not a failure."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from bench import eventloop
from bench.ceiling import run_ceiling
from bench.machine import describe
from bench.plan import SCENARIOS, Plan
from bench.processes import BenchError
from bench.profiling import summarise
from bench.report import Report, print_json, print_table
from bench.results import Result
from bench.scenarios import run_amqp, run_latency
from bench.web import run_bare, run_http
from leveret.jobs import LeveretError

log = logging.getLogger(__name__)

DEFAULT_JOBS = 20_000
QUICK_JOBS = 2_000
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Leveret's throughput and latency, next to the raw aio-pika ceiling.",
    )
    p.add_argument(
        "--jobs",
        type=int,
        help=f"jobs per scenario (default {DEFAULT_JOBS:,}; "
        f"--quick: {QUICK_JOBS:,}); latency runs a quarter",
    )
    p.add_argument("--workers", type=int, default=2, help="worker (and raw consumer) processes")
    p.add_argument(
        "--amqp-url",
        default=os.environ.get("LEVERET_AMQP_URL", DEFAULT_AMQP_URL),
        help="RabbitMQ [LEVERET_AMQP_URL]",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument(
        "--only",
        action="append",
        metavar="SCENARIO[,SCENARIO]",
        help=f"run only these of {', '.join(SCENARIOS)} (repeatable)",
    )
    p.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_JOBS:,} jobs")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every scenario this many times, interleaved, and report the median run",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        help="jobs each worker runs at once (prefetch: twice this); default: Leveret's",
    )
    p.add_argument(
        "--ceiling-consumers",
        type=int,
        help="raw consumer processes of the ceiling (default: the faster of 1 and --workers)",
    )
    p.add_argument("--window", type=int, default=Plan.window, help="publishes / submits in flight")
    p.add_argument(
        "--batch",
        type=int,
        default=Plan.batch,
        help="amqp: jobs per Producer.submit_many call (0: Producer.submit)",
    )
    p.add_argument(
        "--http-concurrency",
        type=int,
        default=Plan.http_concurrency,
        help="requests the load generator keeps in flight",
    )
    p.add_argument(
        "--http-client",
        choices=("raw", "httpx"),
        default=Plan.http_client,
        help="the load generator's HTTP client",
    )
    p.add_argument(
        "--latency-rate",
        type=float,
        help="jobs/s of the latency scenario (default: a quarter of amqp's)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="write cProfile stats (and .txt summaries) of workers, gateway, "
        "bare server and producer to DIR; figures of a profiled run are slower",
    )
    return p


def plan_of(args: argparse.Namespace) -> Plan:
    """The plan the arguments ask for."""
    chosen = SCENARIOS
    if args.only:
        asked = {name.strip() for value in args.only for name in value.split(",") if name.strip()}
        unknown = asked - set(SCENARIOS)
        if unknown:
            raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; pick from {SCENARIOS}")
        if "latency" in asked and args.latency_rate is None:
            asked.add("amqp")  # the latency scenario paces itself on amqp's rate
        chosen = tuple(name for name in SCENARIOS if name in asked)
    jobs = args.jobs or (QUICK_JOBS if args.quick else DEFAULT_JOBS)
    counts = (
        jobs,
        args.workers,
        args.window,
        args.repeat,
        args.concurrency or 1,
        args.ceiling_consumers or 1,
    )
    if min(counts) < 1:
        raise SystemExit(
            "--jobs, --workers, --window, --repeat, --concurrency, --ceiling-consumers: > 0"
        )
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    return Plan(
        jobs=jobs,
        workers=args.workers,
        amqp_url=args.amqp_url,
        scenarios=chosen,
        concurrency=args.concurrency,
        ceiling_consumers=args.ceiling_consumers,
        window=args.window,
        batch=max(0, args.batch),
        http_concurrency=args.http_concurrency,
        http_client=args.http_client,
        latency_rate=args.latency_rate,
        repeat=args.repeat,
        profile=args.profile.resolve() if args.profile is not None else None,
    )


async def run(plan: Plan, progress: Console) -> Report:
    """Run the plan's scenarios one after another; a crash is recorded, the rest go on."""
    # SIGTERM stops the run as Ctrl-C does: the current scenario's processes are stopped
    # and its namespace deleted on the way out.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    report = Report(machine=await describe(plan.amqp_url), plan=plan)
    runners: dict[str, Callable[[], Awaitable[Result]]] = {
        "ceiling": lambda: run_ceiling(plan),
        "amqp": lambda: run_amqp(plan),
        "http": lambda: run_http(plan),
        "bare": lambda: run_bare(plan),
        "latency": lambda: run_latency(plan, _latency_rate(plan, report)),
    }
    for round_ in range(1, plan.repeat + 1):
        for name in plan.scenarios:
            if name in report.failures:
                continue
            began = time.monotonic()
            label = name if plan.repeat == 1 else f"{name} (run {round_} of {plan.repeat})"
            progress.print(f"[dim]bench:[/dim] {label} …", highlight=False)
            try:
                report.record(await runners[name]())
            except Exception as exc:  # one scenario's crash must not hide the others' figures
                report.failures[name] = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, BenchError):  # says what went wrong in its message
                    progress.print(f"[red]bench: {name} crashed:[/red] {escape(str(exc))}")
                else:
                    log.exception("bench: %s crashed", name)
                continue
            progress.print(f"[dim]bench: {label} done in {time.monotonic() - began:.1f}s[/dim]")
    return report


def _latency_rate(plan: Plan, report: Report) -> float:
    if plan.latency_rate is not None:
        return plan.latency_rate
    amqp = report.results.get("amqp")
    if amqp is None or not amqp.end_to_end_rate:
        raise RuntimeError("no amqp rate to pace on (amqp did not run); give --latency-rate")
    return amqp.end_to_end_rate / 4


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m bench`."""
    args = parser().parse_args(argv)
    plan = plan_of(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    progress = Console(stderr=True)
    try:
        report = eventloop.run(run(plan, progress))
    except LeveretError as exc:  # RabbitMQ unreachable, say: one line, not a traceback
        progress.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        progress.print("[red]bench: interrupted[/red]")
        sys.exit(130)
    out = Console()
    if not out.is_terminal:  # piped or redirected: do not squeeze the table into 80 columns
        out = Console(width=140)
    if args.json:
        print_json(report)
    else:
        print_table(report, out)
    if plan.profile is not None:
        for summary in summarise(plan.profile):
            progress.print(f"[dim]bench: profile summary {summary}[/dim]", highlight=False)
    sys.exit(1 if report.failures else 0)
