"""What a scenario measured, and how a list of latencies becomes percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Latency:
    """Submit-to-completion latency percentiles, in milliseconds."""

    p50: float
    p95: float
    p99: float
    max: float
    samples: int

    @classmethod
    def of(cls, millis: Sequence[float]) -> Latency | None:
        """The percentiles of `millis` (nearest rank), or None when there are none."""
        if not millis:
            return None
        ordered = sorted(millis)
        return cls(
            p50=_rank(ordered, 0.50),
            p95=_rank(ordered, 0.95),
            p99=_rank(ordered, 0.99),
            max=ordered[-1],
            samples=len(ordered),
        )


def _rank(ordered: Sequence[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True, kw_only=True)
class Result:
    """One scenario's figures. Rates are per second; None where a figure does not apply."""

    scenario: str
    jobs: int
    """Jobs (messages) that went all the way through."""
    submit_rate: float | None
    """Submits (publishes, accepted requests) per second, first start to last answer."""
    end_to_end_rate: float | None
    """Jobs per second from the first submit to the last completion (ack, for the ceiling)."""
    latency: Latency | None
    """Submit-to-completion latency of each job."""
    errors: int = 0
    """Submits refused or failed, and jobs that ended in another state than completed."""
    notes: tuple[str, ...] = ()
    """How the scenario was run, in a few words each."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Raw figures behind the rates (times, counts), for --json."""

    def as_dict(self) -> dict[str, Any]:
        """The result as plain data, for --json."""
        return asdict(self)


def median_run(runs: Sequence[Result]) -> Result:
    """The run in the middle (the lower of the two middles for an even count): by p99 for
    the paced latency scenario, by end-to-end rate for the others; with a note of them all."""
    if len(runs) == 1:
        return runs[0]
    if runs[0].scenario == "latency":
        ordered = sorted(runs, key=lambda r: r.latency.p99 if r.latency else math.inf)
        shown = [f"p99 {r.latency.p99:.1f} ms" if r.latency else "-" for r in runs]
    else:
        ordered = sorted(runs, key=lambda r: -(r.end_to_end_rate or 0.0))
        shown = [f"{r.end_to_end_rate or 0:,.0f}/s" for r in runs]
    chosen = ordered[(len(ordered) - 1) // 2]
    return replace(
        chosen,
        notes=(*chosen.notes, f"median of {len(runs)} runs: " + ", ".join(shown)),
        extra={**chosen.extra, "all_runs": [r.as_dict() for r in runs]},
    )
