"""Retry backoff: how long a job waits before its next attempt."""

from __future__ import annotations

import math
import random
from enum import StrEnum
from typing import Annotated

import msgspec

from leveret.jobs.rules import MAX_DURATION

_Seconds = Annotated[float, msgspec.Meta(ge=0, le=MAX_DURATION)]


class BackoffStrategy(StrEnum):
    """How the wait grows from one attempt to the next."""

    EXPONENTIAL = "exponential"  # initial * multiplier ** (attempt - 1)
    LINEAR = "linear"  # initial * attempt
    CONSTANT = "constant"  # initial, every time


class Backoff(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A retry policy; with `jitter`, the wait is drawn uniformly from [0, computed] ("full
    jitter"), so that jobs failing together do not come back together."""

    strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL
    initial: _Seconds = 1.0
    max: _Seconds = 3600.0
    multiplier: Annotated[float, msgspec.Meta(ge=1, le=100)] = 2.0
    jitter: bool = True

    def ceiling(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1-based), before any jitter."""
        n = max(1, attempt)
        if self.strategy is BackoffStrategy.CONSTANT:
            raw = self.initial
        elif self.strategy is BackoffStrategy.LINEAR:
            raw = self.initial * n
        else:
            # Capping the exponent keeps huge attempt numbers from overflowing a float, but a
            # multiplier above 2 overflows before the cap: such a wait is past any `max`.
            try:
                growth = self.multiplier ** min(n - 1, 1000)
            except OverflowError:
                growth = math.inf
            raw = self.initial * growth if self.initial else 0.0
        return min(raw, self.max)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait, in seconds, after failed attempt number `attempt` (1-based)."""
        ceiling = self.ceiling(attempt)
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(0.0, ceiling)


DEFAULT_BACKOFF = Backoff()
