"""The settlement decision (workers.decision.decide): what each outcome of an attempt means
for its job, with no store and no broker."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leveret.jobs.backoff import Backoff, BackoffStrategy
from leveret.jobs.model import Job, new_job_id
from leveret.jobs.rules import DEFAULT_MAX_ATTEMPTS
from leveret.jobs.states import JobState, can_transition
from leveret.workers.decision import Action, Decision, decide
from leveret.workers.outcomes import (
    AttemptFailed,
    ErrorCategory,
    Interrupted,
    InterruptReason,
    Outcome,
    Returned,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MAX_RESULT = 1024
REPORTED = {"progress": 40.0, "checkpoint": {"page": 4}}


def running_job(**fields: Any) -> Job:
    defaults: dict[str, Any] = {
        "id": new_job_id(),
        "type": "t",
        "state": JobState.RUNNING,
        "attempt": 1,
        "max_attempts": 3,
        "backoff": Backoff(initial=2, multiplier=3, jitter=False),
    }
    return Job(**{**defaults, **fields})


def decided(job: Job, outcome: Outcome, reported: dict[str, Any] | None = None) -> Decision:
    return decide(job, outcome, reported or {}, max_result=MAX_RESULT, now=NOW)


def error(category: ErrorCategory = ErrorCategory.ERROR, **kw: Any) -> AttemptFailed:
    return AttemptFailed("RuntimeError: boom", category, retryable=kw.pop("retryable", True), **kw)


def test_a_returned_result_completes_the_job_with_what_the_handler_reported() -> None:
    decision = decided(running_job(), Returned({"rows": 3}), REPORTED)
    assert decision.target is JobState.COMPLETED
    assert decision.action is Action.ACK
    assert decision.changes == {
        "checkpoint": {"page": 4},
        "progress": 100.0,  # a completed job is done, whatever it reported last
        "result": {"rows": 3},
        "completed_at": NOW,
    }


def test_a_result_over_the_limit_fails_the_job_for_good_without_storing_it() -> None:
    decision = decided(running_job(), Returned("x" * MAX_RESULT), REPORTED)
    assert decision.target is JobState.FAILED
    assert decision.action is Action.DEAD_LETTER
    assert decision.changes["error_category"] == "result_too_large"
    assert "result" not in decision.changes
    assert "checkpoint" not in decision.changes  # reported values go with a stored outcome only
    assert decision.reason is not None
    assert decision.reason.startswith("failed: result is ")
    assert f"over the limit of {MAX_RESULT}" in decision.reason


@pytest.mark.parametrize(
    "result",
    [object(), 2**64, {("tuple", "key"): 1}],
    ids=["object", "huge-int", "tuple-key"],
)
def test_a_result_that_cannot_be_stored_or_shown_fails_the_job_for_good(result: Any) -> None:
    decision = decided(running_job(), Returned(result))
    assert decision.target is JobState.FAILED
    assert decision.action is Action.DEAD_LETTER
    assert decision.changes["error_category"] == "unserialisable"
    assert str(decision.changes["last_error"]).startswith("result is not serialisable")


def test_a_retryable_failure_with_attempts_left_retries_after_the_backoff() -> None:
    job = running_job(attempt=2)  # exponential: 2s, then 6s
    decision = decided(job, error(), REPORTED)
    assert decision.target is JobState.RETRYING
    assert decision.action is Action.RETRY
    assert decision.next_attempt == 3
    assert decision.not_before == NOW + timedelta(seconds=6)
    assert decision.changes == {
        **REPORTED,
        "last_error": "RuntimeError: boom",
        "error_category": "error",
        "scheduled_at": NOW + timedelta(seconds=6),
    }


def test_retry_with_a_delay_overrides_the_backoff() -> None:
    decision = decided(running_job(), error(ErrorCategory.RETRY, delay=0.25))
    assert decision.action is Action.RETRY
    assert decision.not_before == NOW + timedelta(seconds=0.25)
    assert decision.changes["error_category"] == "retry"


def test_a_zero_delay_retry_may_start_at_once() -> None:
    job = running_job(backoff=Backoff(strategy=BackoffStrategy.CONSTANT, initial=0))
    decision = decided(job, error())
    assert decision.not_before == NOW


def test_jitter_draws_from_the_given_random_source() -> None:
    job = running_job(backoff=Backoff(initial=10, jitter=True))
    first = decide(job, error(), {}, max_result=MAX_RESULT, now=NOW, rng=random.Random(7))
    again = decide(job, error(), {}, max_result=MAX_RESULT, now=NOW, rng=random.Random(7))
    assert first.not_before == again.not_before
    assert first.not_before is not None
    assert NOW <= first.not_before <= NOW + timedelta(seconds=10)


def test_the_last_attempt_failing_dead_letters_the_job() -> None:
    decision = decided(running_job(attempt=3), error(), REPORTED)
    assert decision.target is JobState.DEAD_LETTER
    assert decision.action is Action.DEAD_LETTER
    assert decision.reason == "dead_letter: RuntimeError: boom"
    assert decision.changes["completed_at"] == NOW
    assert decision.changes["checkpoint"] == {"page": 4}  # kept for a retry from the DLQ
    assert decision.next_attempt is None


@pytest.mark.parametrize("category", [ErrorCategory.REJECTED, ErrorCategory.NO_HANDLER])
def test_a_permanent_failure_fails_the_job_whatever_attempts_are_left(
    category: ErrorCategory,
) -> None:
    decision = decided(running_job(attempt=1, max_attempts=10), error(category, retryable=False))
    assert decision.target is JobState.FAILED
    assert decision.action is Action.DEAD_LETTER
    assert decision.reason == "failed: RuntimeError: boom"
    assert decision.changes["error_category"] == str(category)


def test_without_its_own_max_attempts_a_job_has_the_fleet_default() -> None:
    last = running_job(attempt=DEFAULT_MAX_ATTEMPTS, max_attempts=None)
    assert decided(last, error()).action is Action.DEAD_LETTER
    before_last = running_job(attempt=DEFAULT_MAX_ATTEMPTS - 1, max_attempts=None)
    assert decided(before_last, error()).action is Action.RETRY


def test_without_its_own_backoff_a_job_waits_the_default_backoff() -> None:
    decision = decided(running_job(backoff=None), error())
    assert decision.not_before is not None
    assert NOW <= decision.not_before <= NOW + timedelta(seconds=1)  # 1s, fully jittered


def test_a_cancel_while_running_cancels_the_job_and_acks() -> None:
    decision = decided(running_job(), Interrupted(InterruptReason.CANCELLED), REPORTED)
    assert decision.target is JobState.CANCELLED
    assert decision.action is Action.ACK
    assert decision.changes == {"completed_at": NOW, "last_error": "cancelled while running"}


def test_a_shutdown_hands_the_job_back_as_if_the_attempt_never_started() -> None:
    decision = decided(running_job(attempt=2), Interrupted(InterruptReason.SHUTDOWN), REPORTED)
    assert decision.target is JobState.SCHEDULED
    assert decision.action is Action.HAND_BACK
    assert decision.changes == {"attempt": 1, "worker": None, "started_at": None}


EVERY_OUTCOME: list[Outcome] = [
    Returned(None),
    Returned(object()),
    error(),
    error(retryable=False),
    Interrupted(InterruptReason.CANCELLED),
    Interrupted(InterruptReason.SHUTDOWN),
]


@pytest.mark.parametrize("attempt", [1, 3])
@pytest.mark.parametrize("outcome", EVERY_OUTCOME, ids=repr)
def test_every_decision_is_a_legal_move_from_running(outcome: Outcome, attempt: int) -> None:
    decision = decided(running_job(attempt=attempt), outcome)
    assert can_transition(JobState.RUNNING, decision.target)
    # The action follows from the target: one table's worth of pairs, nothing else.
    expected = {
        JobState.COMPLETED: Action.ACK,
        JobState.CANCELLED: Action.ACK,
        JobState.RETRYING: Action.RETRY,
        JobState.FAILED: Action.DEAD_LETTER,
        JobState.DEAD_LETTER: Action.DEAD_LETTER,
        JobState.SCHEDULED: Action.HAND_BACK,
    }
    assert decision.action is expected[decision.target]
    assert all(not isinstance(v, ErrorCategory) for v in decision.changes.values())
