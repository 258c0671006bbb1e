"""The benchmark still runs: a small `python -m bench` from a fresh process, as README says.

Figures are the bench's business, not a test's; this only proves every scenario moves every
job, reports in its documented JSON shape, and leaves nothing behind on the broker.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import ROOT

JOBS = 400
SCENARIOS = ("ceiling", "amqp", "http", "bare", "latency")


def _broker_names() -> list[str]:
    names: list[str] = []
    for kind in ("queues", "exchanges"):
        listed = subprocess.run(
            ["rabbitmqctl", "-q", f"list_{kind}", "name"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        names += [line.strip() for line in listed.stdout.splitlines()]
    return [name for name in names if name.startswith("bench")]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_small_bench_run_moves_every_job_and_cleans_up() -> None:
    before = set(_broker_names())
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--jobs", str(JOBS), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(run.stdout)
    assert not report["failures"], report["failures"]
    for name in SCENARIOS:
        result = report["results"][name]
        expected = JOBS // 4 if name == "latency" else JOBS
        assert result["jobs"] == expected, name
        assert result["errors"] == 0, name
        assert result["end_to_end_rate"] > 0, name
    for name in ("amqp", "http", "latency"):
        assert report["results"][name]["latency"]["samples"] == report["results"][name]["jobs"]
    assert len(report["targets"]) == 3
    assert all(isinstance(target["met"], bool) for target in report["targets"])
    assert set(_broker_names()) <= before, "the bench left queues or exchanges behind"
