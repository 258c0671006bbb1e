"""Job priorities and their mapping onto AMQP message priorities."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leveret.jobs.priority import MAX_AMQP_PRIORITY, Priority, from_amqp, to_amqp


def test_scale_is_gopherqueues() -> None:
    assert [(p.name, int(p)) for p in Priority] == [
        ("CRITICAL", 0),
        ("HIGH", 1),
        ("NORMAL", 2),
        ("LOW", 3),
        ("BULK", 4),
    ]
    assert MAX_AMQP_PRIORITY == 4


@pytest.mark.parametrize(
    ("priority", "amqp"),
    [
        (Priority.CRITICAL, 4),
        (Priority.HIGH, 3),
        (Priority.NORMAL, 2),
        (Priority.LOW, 1),
        (Priority.BULK, 0),
    ],
)
def test_to_amqp_runs_urgent_jobs_first(priority: Priority, amqp: int) -> None:
    assert to_amqp(priority) == amqp
    assert to_amqp(int(priority)) == amqp
    assert from_amqp(amqp) is priority


@pytest.mark.parametrize("priority", list(Priority))
def test_round_trip(priority: Priority) -> None:
    assert from_amqp(to_amqp(priority)) is priority


def test_more_urgent_means_higher_amqp_priority() -> None:
    amqp = [to_amqp(p) for p in sorted(Priority)]
    assert amqp == sorted(amqp, reverse=True)


@pytest.mark.parametrize("bad", [-1, 5, 9])
def test_to_amqp_rejects_unknown_priorities(bad: int) -> None:
    with pytest.raises(ValueError, match=str(bad)):
        to_amqp(bad)


def test_missing_amqp_priority_is_normal() -> None:
    assert from_amqp(None) is Priority.NORMAL


@pytest.mark.parametrize(
    ("amqp", "priority"),
    [(5, Priority.CRITICAL), (9, Priority.CRITICAL), (255, Priority.CRITICAL), (-1, Priority.BULK)],
)
def test_out_of_range_amqp_priorities_clamp(amqp: int, priority: Priority) -> None:
    assert from_amqp(amqp) is priority


@given(st.integers(min_value=-(2**31), max_value=2**31))
def test_from_amqp_always_gives_a_priority(amqp: int) -> None:
    priority = from_amqp(amqp)
    assert isinstance(priority, Priority)
    assert to_amqp(priority) == max(0, min(MAX_AMQP_PRIORITY, amqp))
