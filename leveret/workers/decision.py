"""What an attempt's outcome means for its job: a pure function, apart from all I/O.

`decide` says which state the job moves to, what is written with it, and what happens to
the delivery: ack it, send the next attempt through the delay tiers, copy the job to its
DLQ, or hand the message back. `workers.settle` carries the decision out.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec

from leveret.jobs.backoff import DEFAULT_BACKOFF
from leveret.jobs.model import Job
from leveret.jobs.rules import DEFAULT_MAX_ATTEMPTS
from leveret.jobs.states import JobState
from leveret.workers.outcomes import (
    AttemptFailed,
    ErrorCategory,
    Interrupted,
    InterruptReason,
    Outcome,
    Returned,
)


class Action(StrEnum):
    """What becomes of the delivery once the job's new state is written."""

    ACK = "ack"  # nothing follows: the job completed or was cancelled
    RETRY = "retry"  # publish the next attempt (through a delay tier), then ack
    DEAD_LETTER = "dead_letter"  # copy the job to its queue's DLQ with the reason, then ack
    HAND_BACK = "hand_back"  # requeue the message untouched; the attempt does not count


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The job's next state, what to write with it, and what to do with the delivery."""

    target: JobState
    action: Action
    changes: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None  # DEAD_LETTER: why, for the DLQ copy's header
    next_attempt: int | None = None  # RETRY: the attempt the next message starts
    not_before: datetime | None = None  # RETRY: when the next attempt may start


def decide(
    job: Job,
    outcome: Outcome,
    reported: Mapping[str, Any],
    *,
    max_result: int,
    now: datetime,
    rng: random.Random | None = None,
) -> Decision:
    """The decision for `outcome` of `job`'s attempt (`job.attempt`, the job as claimed).

    `reported` holds the progress and checkpoint values the handler reported, written with
    the outcome. A result over `max_result` bytes (as msgpack), or one the API could not
    show as JSON, fails the job for good. `rng` draws the backoff's jitter.
    """
    if isinstance(outcome, Returned):
        return _returned(job, outcome, reported, max_result=max_result, now=now, rng=rng)
    if isinstance(outcome, Interrupted):
        return _interrupted(job, outcome, now=now)
    return _failed(job, outcome, reported, now=now, rng=rng)


def _returned(
    job: Job,
    outcome: Returned,
    reported: Mapping[str, Any],
    *,
    max_result: int,
    now: datetime,
    rng: random.Random | None,
) -> Decision:
    unfit = _unfit_result(outcome.result, max_result)
    if unfit is not None:
        return _failed(job, unfit, {}, now=now, rng=rng)
    changes = {**reported, "result": outcome.result, "completed_at": now, "progress": 100.0}
    return Decision(target=JobState.COMPLETED, action=Action.ACK, changes=changes)


def _failed(
    job: Job,
    outcome: AttemptFailed,
    reported: Mapping[str, Any],
    *,
    now: datetime,
    rng: random.Random | None,
) -> Decision:
    changes: dict[str, Any] = {
        **reported,
        "last_error": outcome.error,
        "error_category": str(outcome.category),
    }
    if outcome.retryable and job.attempt < (job.max_attempts or DEFAULT_MAX_ATTEMPTS):
        backoff = job.backoff or DEFAULT_BACKOFF
        delay = outcome.delay if outcome.delay is not None else backoff.delay(job.attempt, rng)
        run_at = now + timedelta(seconds=delay)
        changes["scheduled_at"] = run_at
        return Decision(
            target=JobState.RETRYING,
            action=Action.RETRY,
            changes=changes,
            next_attempt=job.attempt + 1,
            not_before=run_at,
        )
    target = JobState.DEAD_LETTER if outcome.retryable else JobState.FAILED
    changes["completed_at"] = now
    return Decision(
        target=target,
        action=Action.DEAD_LETTER,
        changes=changes,
        reason=f"{target}: {outcome.error}",
    )


def _interrupted(job: Job, outcome: Interrupted, *, now: datetime) -> Decision:
    if outcome.reason is InterruptReason.CANCELLED:
        # Whoever cancelled it has usually written the state already; if not, it is now.
        changes = {"completed_at": now, "last_error": "cancelled while running"}
        return Decision(target=JobState.CANCELLED, action=Action.ACK, changes=changes)
    # Shutdown: hand the job back as if this attempt never started, so it does not count.
    changes = {"attempt": job.attempt - 1, "worker": None, "started_at": None}
    return Decision(target=JobState.SCHEDULED, action=Action.HAND_BACK, changes=changes)


_MSGPACK = msgspec.msgpack.Encoder()
_JSON = msgspec.json.Encoder()
# What encoding a value msgpack or JSON cannot carry raises (OverflowError: an int past 64
# bits; RecursionError: a circular or too deeply nested value).
UNSERIALISABLE = (TypeError, ValueError, OverflowError, RecursionError, msgspec.EncodeError)


def _unfit_result(result: Any, max_result: int) -> AttemptFailed | None:
    """Why `result` cannot be stored and shown, or None when it can."""
    try:
        size = len(_MSGPACK.encode(result))
        _JSON.encode(result)  # the API shows results as JSON
    except UNSERIALISABLE as exc:
        error = f"result is not serialisable: {exc}"
        return AttemptFailed(error, ErrorCategory.UNSERIALISABLE, retryable=False)
    if size > max_result:
        error = f"result is {size} bytes, over the limit of {max_result}"
        return AttemptFailed(error, ErrorCategory.RESULT_TOO_LARGE, retryable=False)
    return None
