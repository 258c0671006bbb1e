"""The run's outcome: targets met or missed, one Rich table, or the same as JSON."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.machine import Machine
from bench.plan import CEILING_AIM, CEILING_TARGET, LATENCY_TARGET_MS, Plan
from bench.results import Result, median_run
from leveret.jobs.settings import mask_url


@dataclass(frozen=True)
class Target:
    """One of the issue's targets and how this run fared."""

    name: str
    measured: float | None
    """The ratio or figure the target is about; None when its scenarios did not run."""
    met: bool | None
    detail: str


@dataclass
class Report:
    """Everything a run found."""

    machine: Machine
    plan: Plan
    results: dict[str, Result] = field(default_factory=dict)
    """Each scenario's figures (the median run when it ran more than once)."""
    failures: dict[str, str] = field(default_factory=dict)
    """Scenarios that crashed, with why."""
    runs: dict[str, list[Result]] = field(default_factory=dict)
    """Every run of each scenario, in order."""

    def record(self, result: Result) -> None:
        """Add one run of a scenario."""
        runs = self.runs.setdefault(result.scenario, [])
        runs.append(result)
        self.results[result.scenario] = median_run(runs)

    def ratio(self, scenario: str, to: str, figure: str) -> float | None:
        """`scenario`'s `figure` divided by `to`'s, when both ran."""
        mine, theirs = self.results.get(scenario), self.results.get(to)
        if mine is None or theirs is None:
            return None
        a, b = getattr(mine, figure), getattr(theirs, figure)
        return None if a is None or not b else float(a / b)

    def targets(self) -> list[Target]:
        """The three targets of the issue."""
        share = self.ratio("amqp", "ceiling", "end_to_end_rate")
        gateway = self.ratio("http", "bare", "submit_rate")
        paced = self.results.get("latency")
        p99 = paced.latency.p99 if paced is not None and paced.latency is not None else None
        return [
            Target(
                f"amqp end-to-end ≥ {CEILING_TARGET:.0%} of the ceiling's (aim {CEILING_AIM:.0%})",
                share,
                None if share is None else share >= CEILING_TARGET,
                ""
                if share is None
                else f"{share:.0%}" + (" (aim met)" if share >= CEILING_AIM else ""),
            ),
            Target(
                "gateway submit/s ≥ bare endpoint's",
                gateway,
                None if gateway is None else gateway >= 1.0,
                "" if gateway is None else f"{gateway:.2f}x",
            ),
            Target(
                f"p99 < {LATENCY_TARGET_MS:g} ms at a quarter of amqp's rate",
                p99,
                None if p99 is None else p99 < LATENCY_TARGET_MS,
                "" if p99 is None else f"{p99:.1f} ms",
            ),
        ]

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        plan = asdict(self.plan)
        plan["profile"] = None if self.plan.profile is None else str(self.plan.profile)
        plan["amqp_url"] = mask_url(self.plan.amqp_url)
        return {
            "machine": self.machine.as_dict(),
            "plan": plan,
            "results": {name: result.as_dict() for name, result in self.results.items()},
            "ratios": {
                name: {
                    "end_to_end_vs_ceiling": None
                    if name == "latency"
                    else self.ratio(name, "ceiling", "end_to_end_rate"),
                    "submit_vs_bare": self.ratio(name, "bare", "submit_rate")
                    if name == "http"
                    else None,
                    "p99_vs_target": _p99_share(result),
                }
                for name, result in self.results.items()
            },
            "targets": [asdict(target) for target in self.targets()],
            "failures": self.failures,
        }


def print_json(report: Report) -> None:
    """The report as one JSON document on stdout, nothing else."""
    sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")


def print_table(report: Report, console: Console) -> None:
    """The header, the table, the notes and the targets."""
    m, plan = report.machine, report.plan
    console.print(
        f"[bold]Leveret bench[/bold]  {m.cpu}, {m.cores} cores, {m.ram_gib:g} GiB RAM; "
        f"Python {m.python}; {m.rabbitmq}; aio-pika {m.aio_pika}; {m.event_loop}; "
        f"{m.http_parser}; {m.platform}",
        highlight=False,
    )
    console.print(
        f"{plan.jobs:,} jobs a scenario (latency: {plan.latency_jobs:,}), "
        f"{plan.repeat} run(s) of each (the median shown), {plan.workers} "
        f"worker process(es), concurrency {plan.worker_settings.concurrency}, "
        f"window {plan.window}",
        highlight=False,
    )
    console.print(_table(report))
    for name, result in report.results.items():
        for note in result.notes:
            console.print(f"  [dim]{name}:[/dim] {escape(note)}", highlight=False)
    for name, why in report.failures.items():
        console.print(f"  [red]{name} crashed:[/red] {escape(why)}", highlight=False)
    for target in report.targets():
        mark = {True: "[green]met[/green]", False: "[red]missed[/red]", None: "[dim]not run[/dim]"}
        console.print(
            f"  target {target.name}: {mark[target.met]} {target.detail}", highlight=False
        )


def _table(report: Report) -> Table:
    table = Table(show_lines=False)
    table.add_column("scenario")
    for column in ("jobs", "submit/s", "end-to-end/s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for column in ("e2e/ceiling", "submit/bare", f"p99/{LATENCY_TARGET_MS:g}ms"):
        table.add_column(column, justify="right")
    for name, r in report.results.items():
        lat = r.latency
        jobs = f"{r.jobs:,}" + (f" ({r.errors} err)" if r.errors else "")
        table.add_row(
            name,
            jobs,
            _rate(r.submit_rate),
            _rate(r.end_to_end_rate),
            _ms(lat.p50 if lat else None),
            _ms(lat.p95 if lat else None),
            _ms(lat.p99 if lat else None),
            # The latency run is paced: its end-to-end rate is the pace, not a capacity.
            _share(None if name == "latency" else report.ratio(name, "ceiling", "end_to_end_rate")),
            _share(report.ratio(name, "bare", "submit_rate") if name in ("http", "bare") else None),
            _share(_p99_share(r)),
        )
    return table


def _p99_share(result: Result) -> float | None:
    return None if result.latency is None else result.latency.p99 / LATENCY_TARGET_MS


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
