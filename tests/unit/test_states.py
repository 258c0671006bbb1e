"""The job states and the one table of legal moves between them."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leveret.jobs.states import (
    ACTIVE_STATES,
    DLQ_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    JobState,
    can_transition,
    sources_of,
)

states = st.sampled_from(JobState)


def test_values_are_gopherqueues_nine_names() -> None:
    assert [s.value for s in JobState] == [
        "pending",
        "delayed",
        "scheduled",
        "running",
        "retrying",
        "completed",
        "failed",
        "dead_letter",
        "cancelled",
    ]


def test_states_are_strings() -> None:
    assert JobState("dead_letter") is JobState.DEAD_LETTER
    assert JobState.RUNNING == "running"
    assert f"{JobState.RETRYING}" == "retrying"


def test_every_state_has_an_entry() -> None:
    assert set(TRANSITIONS) == set(JobState)
    for targets in TRANSITIONS.values():
        assert isinstance(targets, frozenset)
        assert targets <= set(JobState)


def test_completed_has_no_way_out() -> None:
    assert TRANSITIONS[JobState.COMPLETED] == frozenset()
    assert not any(can_transition(JobState.COMPLETED, s) for s in JobState)


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.DEAD_LETTER, JobState.CANCELLED])
def test_failed_dead_and_cancelled_only_go_back_to_scheduled(state: JobState) -> None:
    assert TRANSITIONS[state] == {JobState.SCHEDULED}


@pytest.mark.parametrize("state", sorted(ACTIVE_STATES))
def test_every_active_state_can_be_cancelled(state: JobState) -> None:
    assert can_transition(state, JobState.CANCELLED)


def test_only_active_states_can_be_cancelled() -> None:
    assert sources_of(JobState.CANCELLED) == ACTIVE_STATES


def test_the_designed_lifecycle_is_allowed() -> None:
    path = [
        JobState.PENDING,
        JobState.SCHEDULED,
        JobState.RUNNING,
        JobState.RETRYING,
        JobState.SCHEDULED,
        JobState.RUNNING,
        JobState.DEAD_LETTER,
        JobState.SCHEDULED,
        JobState.RUNNING,
        JobState.COMPLETED,
    ]
    for source, target in itertools.pairwise(path):
        assert can_transition(source, target), (source, target)
    assert can_transition(JobState.DELAYED, JobState.SCHEDULED)
    assert can_transition(JobState.RUNNING, JobState.FAILED)


def test_only_running_reaches_an_outcome() -> None:
    for outcome in (JobState.COMPLETED, JobState.FAILED, JobState.DEAD_LETTER, JobState.RETRYING):
        assert sources_of(outcome) == {JobState.RUNNING}, outcome


def test_nothing_moves_back_to_pending_or_delayed() -> None:
    assert sources_of(JobState.PENDING) == frozenset()
    assert sources_of(JobState.DELAYED) == frozenset()


@given(states, states)
def test_can_transition_and_sources_of_agree_with_the_table(
    source: JobState, target: JobState
) -> None:
    allowed = target in TRANSITIONS[source]
    assert can_transition(source, target) is allowed
    assert (source in sources_of(target)) is allowed


@given(states)
def test_sources_of_is_the_inverse_of_the_table(target: JobState) -> None:
    assert sources_of(target) == {s for s in JobState if target in TRANSITIONS[s]}


def test_terminal_and_active_partition_the_states() -> None:
    assert set(JobState) == TERMINAL_STATES | ACTIVE_STATES
    assert not TERMINAL_STATES & ACTIVE_STATES
    assert {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.DEAD_LETTER,
        JobState.CANCELLED,
    } == TERMINAL_STATES


def test_dlq_states_are_terminal() -> None:
    assert DLQ_STATES <= TERMINAL_STATES
    assert {JobState.FAILED, JobState.DEAD_LETTER} == DLQ_STATES


def test_terminal_states_never_move_to_another_terminal_state() -> None:
    for source in TERMINAL_STATES:
        assert not TRANSITIONS[source] & TERMINAL_STATES, source


def test_named_sets_are_immutable() -> None:
    for named in (TERMINAL_STATES, ACTIVE_STATES, DLQ_STATES):
        assert isinstance(named, frozenset)
