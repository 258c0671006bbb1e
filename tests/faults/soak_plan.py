"""The soak's plan: its size, and each job's fate and submission."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from enum import StrEnum

from leveret.jobs import Backoff, BackoffStrategy
from leveret.jobs.submission import Submission


@dataclass(frozen=True)
class Size:
    """How big a soak to run (see the docstring of tests/faults/test_soak.py)."""

    jobs: int = int(os.environ.get("LEVERET_SOAK_JOBS", "900"))
    seconds: float = float(os.environ.get("LEVERET_SOAK_SECONDS", "90"))
    fault_every: float = float(os.environ.get("LEVERET_SOAK_FAULT_EVERY", "4"))
    seed: int = int(os.environ.get("LEVERET_SOAK_SEED", str(random.randrange(1 << 32))))

    @property
    def settle(self) -> float:
        """Seconds the fleet gets, once the load ends, to bring every job to an end."""
        return 120 + self.jobs / 20


SIZE = Size()  # read once: the test's timeout marker needs it at import

QUEUES = ("default", "alpha", "beta")
ASYNC_TYPES = ("soak.work", "soak.report")
TYPES = (*ASYNC_TYPES, "soak.blocking")
BACKOFF = Backoff(strategy=BackoffStrategy.CONSTANT, initial=0.2, jitter=False)
DOOMED_ATTEMPTS = 3
# Attempts of every other job: more than the faults can take from one job, so that only the
# doomed end in dead_letter (a worker killed mid-attempt costs its job that attempt).
SPARE_ATTEMPTS = 10


class Fate(StrEnum):
    """What the test plans for a job; its handler or the test makes it happen."""

    SUCCEED = "succeed"
    FLAKY = "flaky"  # fails its first attempt, then succeeds
    DOOMED = "doomed"  # fails every attempt: dead_letter
    REJECTED = "rejected"  # raises Reject: failed
    CANCEL_WAITING = "cancel_waiting"  # delayed; cancelled long before its time comes
    CANCEL_RUNNING = "cancel_running"  # long; cancelled once the store says it runs
    CANCEL_RACING = "cancel_racing"  # cancelled at a random moment: maybe too late


WEIGHTS = {
    Fate.SUCCEED: 50,
    Fate.FLAKY: 12,
    Fate.DOOMED: 8,
    Fate.REJECTED: 8,
    Fate.CANCEL_WAITING: 5,
    Fate.CANCEL_RUNNING: 5,
    Fate.CANCEL_RACING: 12,
}
CANCELLED = "cancelled"  # what a cancel that came in time records


@dataclass
class Plan:
    """One job: its fate, what is submitted, its id once submitted, what its cancel found."""

    fate: Fate
    submission: Submission
    job_id: str = ""
    cancel: str | None = None  # CANCELLED, or the terminal state a too-late cancel found


def make_plans(size: Size, rng: random.Random) -> list[Plan]:
    """`size.jobs` plans, with fates drawn by WEIGHTS."""
    fates = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=size.jobs)
    return [Plan(fate, _submission(fate, rng)) for fate in fates]


def _submission(fate: Fate, rng: random.Random) -> Submission:
    fail = {Fate.FLAKY: "first", Fate.DOOMED: "always", Fate.REJECTED: "reject"}
    ms, delay, types = rng.randint(20, 300), None, TYPES
    if fate is Fate.CANCEL_RUNNING:
        ms, types = rng.randint(3000, 5000), ASYNC_TYPES  # interruptible, and long to be seen
    elif fate is Fate.CANCEL_RACING:
        ms = rng.randint(100, 1500)
    elif fate is Fate.CANCEL_WAITING:
        delay = rng.uniform(8, 20)
    return Submission(
        type=rng.choice(types),
        payload={"ms": ms, "fail": fail.get(fate, "none")},
        queue=rng.choice(QUEUES),
        priority=rng.randint(0, 4),
        delay=delay,
        max_attempts=DOOMED_ATTEMPTS if fate is Fate.DOOMED else SPARE_ATTEMPTS,
        backoff=BACKOFF,
        tags={"fate": fate.value},
    )
