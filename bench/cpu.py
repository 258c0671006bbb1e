"""CPU time each process spent during a scenario's measured span, per job.

On a small machine every process competes for the same cores, so CPU per job says what
bounds a rate better than the rate does: it hardly moves with what else runs, and it shows
which process to make cheaper. Read from /proc (Linux); elsewhere the figures are absent.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
BROKER = "rabbitmq"
"""The role name of the local RabbitMQ server, when one runs on this machine."""


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of process `pid` (all its threads), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS


def broker_pids() -> list[int]:
    """The local RabbitMQ server's Erlang VM, if there is one to see."""
    pids = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


class CpuMeter:
    """CPU seconds of groups of processes ("workers", "gateway", ...) between `start` and
    `per_job`. The bench's own process is the group "bench" (the producer where there is one,
    and the poller waiting for completion); a local broker's Erlang VM is "rabbitmq"."""

    def __init__(self, groups: Mapping[str, Iterable[int]]) -> None:
        self._groups = {name: list(pids) for name, pids in groups.items()}
        self._groups["bench"] = [os.getpid()]
        self._groups[BROKER] = broker_pids()
        self._before: dict[str, float | None] = {}

    def _sample(self) -> dict[str, float | None]:
        sampled: dict[str, float | None] = {}
        for name, pids in self._groups.items():
            times = [cpu_seconds(pid) for pid in pids]
            sampled[name] = None if not times or None in times else sum(t or 0.0 for t in times)
        return sampled

    def start(self) -> None:
        """Take the first reading."""
        self._before = self._sample()

    def per_job(self, jobs: int) -> dict[str, float]:
        """Milliseconds of CPU per job of each group since `start` (groups unseen left out)."""
        after = self._sample()
        spent: dict[str, float] = {}
        for name, end in after.items():
            begin = self._before.get(name)
            if begin is not None and end is not None and jobs > 0:
                spent[name] = round((end - begin) * 1000 / jobs, 3)
        return spent


def describe(per_job: Mapping[str, float]) -> str:
    """`workers 0.52, gateway 0.31, …` (ms of CPU per job), biggest first."""
    ordered = sorted(per_job.items(), key=lambda item: -item[1])
    total = sum(per_job.values())
    shown = ", ".join(f"{name} {ms:.2f}" for name, ms in ordered)
    caveat = (
        "; rabbitmq is the whole broker, other clients' traffic included"
        if BROKER in per_job
        else ""
    )
    return f"CPU ms per job: {shown} (total {total:.2f}{caveat})"
