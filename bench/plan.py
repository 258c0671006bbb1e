"""What one benchmark run is asked to do: the scenarios, their sizes and their knobs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from leveret.jobs import Settings

SCENARIOS: tuple[str, ...] = ("ceiling", "amqp", "http", "bare", "latency")
"""Every scenario, in the order they run (latency paces itself on amqp's measured rate)."""

LATENCY_TARGET_MS = 50.0
"""p99 submit-to-completion latency, at a quarter of the peak rate, must stay below this."""
CEILING_TARGET = 0.40
"""End-to-end throughput must reach at least this share of the raw aio-pika ceiling ..."""
CEILING_AIM = 0.60
"""... and should reach this one."""


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The knobs of one run; every scenario reads the ones it needs."""

    jobs: int = 20_000
    """No-op jobs (or raw messages) per throughput scenario; latency runs a quarter of it."""
    workers: int = 2
    """Worker processes (and raw consumer processes for the ceiling)."""
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    """The RabbitMQ every scenario uses."""
    scenarios: tuple[str, ...] = SCENARIOS
    """Which scenarios to run, in SCENARIOS order."""
    concurrency: int | None = None
    """Jobs each worker process runs at once (prefetch: twice this); None: Leveret's default."""
    window: int = 500
    """Publishes (raw) or submits (Leveret's Producer) in flight at once."""
    batch: int = 0
    """Leveret's Producer: jobs per submit_many call; 0 submits one job per call."""
    ceiling_prefetch: int = 200
    """Prefetch of each raw consumer in the ceiling."""
    ceiling_consumers: int | None = None
    """Raw consumer processes in the ceiling; None: the faster of 1 and `workers`."""
    http_concurrency: int = 64
    """Requests the HTTP load generator keeps in flight."""
    http_client: str = "raw"
    """The load generator's client: `raw` (asyncio streams) or `httpx` (see bench/load.py)."""
    latency_rate: float | None = None
    """Jobs per second for the latency scenario; default: a quarter of amqp's end-to-end."""
    repeat: int = 1
    """Runs of each scenario, interleaved (all scenarios, then all again); the median counts."""
    profile: Path | None = None
    """Directory to write cProfile stats of the worker, gateway and producer processes to."""

    @property
    def latency_jobs(self) -> int:
        """Jobs the paced latency scenario submits."""
        return max(1, self.jobs // 4)

    @property
    def finish_timeout(self) -> float:
        """Seconds a scenario may wait for its jobs to finish before it is called stuck."""
        return 60.0 + self.jobs / 100

    @property
    def worker_settings(self) -> Settings:
        """The concurrency and prefetch the workers run with."""
        return Settings(concurrency=self.concurrency) if self.concurrency else Settings()

    @property
    def workers_note(self) -> str:
        """How the worker processes run, in a few words."""
        settings = self.worker_settings
        return (
            f"{self.workers} x `leveret worker bench.handlers:worker`, concurrency "
            f"{settings.concurrency}, prefetch {settings.effective_prefetch}; SQLite store"
        )
