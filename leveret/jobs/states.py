"""Job states and the one table of legal moves between them."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job is in its life; the names are GopherQueue's so its SDKs work unchanged."""

    PENDING = "pending"  # stored, waiting for every job in depends_on to complete
    DELAYED = "delayed"  # in a delay tier, waiting for scheduled_at
    SCHEDULED = "scheduled"  # in a work queue, waiting for a worker
    RUNNING = "running"  # a worker runs its handler
    RETRYING = "retrying"  # an attempt failed; waiting in a delay tier for the next one
    COMPLETED = "completed"  # the handler returned; result stored
    FAILED = "failed"  # permanent error (Reject, no handler, malformed): in the DLQ
    DEAD_LETTER = "dead_letter"  # attempts exhausted: in the DLQ
    CANCELLED = "cancelled"  # cancelled by a user; its message is dropped on arrival


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.DEAD_LETTER, JobState.CANCELLED}
)
ACTIVE_STATES: frozenset[JobState] = frozenset(JobState) - TERMINAL_STATES
DLQ_STATES: frozenset[JobState] = frozenset({JobState.FAILED, JobState.DEAD_LETTER})

_S = JobState

# from-state -> the states it may move to. Nothing else in Leveret decides a move.
# Two moves skip a state on purpose: a delivery that ends a delay (delayed, retrying) goes
# straight to running, because `scheduled` would last no time at all; and running -> running
# is the takeover of a job whose worker died (the broker redelivered its message).
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    _S.PENDING: frozenset({_S.SCHEDULED, _S.CANCELLED}),
    _S.DELAYED: frozenset({_S.SCHEDULED, _S.RUNNING, _S.CANCELLED}),
    _S.SCHEDULED: frozenset({_S.RUNNING, _S.CANCELLED}),
    _S.RUNNING: frozenset(
        {
            _S.RUNNING,
            _S.COMPLETED,
            _S.RETRYING,
            _S.FAILED,
            _S.DEAD_LETTER,
            _S.CANCELLED,
            _S.SCHEDULED,  # handed back at shutdown, before the attempt counted
        }
    ),
    _S.RETRYING: frozenset({_S.SCHEDULED, _S.RUNNING, _S.CANCELLED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset({_S.SCHEDULED}),
    _S.DEAD_LETTER: frozenset({_S.SCHEDULED}),
    _S.CANCELLED: frozenset({_S.SCHEDULED}),
}


def can_transition(source: JobState, target: JobState) -> bool:
    """Whether the table allows moving a job from `source` to `target`."""
    return target in TRANSITIONS[source]


def sources_of(target: JobState) -> frozenset[JobState]:
    """Every state from which a job may move to `target`."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)
