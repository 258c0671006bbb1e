"""A submit in the other job queues' spellings (Gopher's `execute_at`, `max_retries`, priority
names and `recurring`; GoQuorra's `delay_seconds`) means what Leveret's own spelling means,
and two spellings of one thing, or a spelling out of range, are refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from leveret.gateway.errors import field_in
from leveret.gateway.requests import SubmitRequest
from leveret.jobs.errors import InvalidJob
from leveret.jobs.priority import Priority
from leveret.jobs.submission import Submission

AT = "2030-01-02T03:04:05Z"


def submission(**body: Any) -> Submission:
    """`body` decoded as the gateway decodes a JSON submit, then turned into a submission."""
    encoded = msgspec.json.encode({"type": "email", **body})
    return msgspec.json.decode(encoded, type=SubmitRequest).to_submission()


def refused_field(**body: Any) -> str:
    """The field the gateway names when it refuses `body`."""
    try:
        submission(**body)
    except InvalidJob as exc:
        return exc.field
    except msgspec.ValidationError as exc:
        return field_in(str(exc)) or "?"
    raise AssertionError(f"{body} was accepted")


@pytest.mark.parametrize(
    ("name", "priority"),
    [
        ("critical", Priority.CRITICAL),
        ("high", Priority.HIGH),
        ("normal", Priority.NORMAL),
        ("low", Priority.LOW),
        ("bulk", Priority.BULK),
    ],
)
def test_priority_names_are_the_numbers(name: str, priority: Priority) -> None:
    assert submission(priority=name).priority == priority
    assert submission(priority=int(priority)).priority == priority


def test_max_retries_counts_the_attempts_after_the_first() -> None:
    assert submission(max_retries=0).max_attempts == 1
    assert submission(max_retries=4).max_attempts == 5
    assert submission(max_retries=99).max_attempts == 100
    assert submission().max_attempts is None  # the handler's default


def test_execute_at_is_scheduled_at_and_delay_seconds_is_delay() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert submission(execute_at=AT).scheduled_at == at
    assert submission(scheduled_at=AT).scheduled_at == at
    assert submission(delay_seconds=90).delay == 90.0
    assert submission(delay_seconds=1.5).delay == 1.5
    assert submission(delay="90s").delay == 90.0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"delay": "5s", "delay_seconds": 5}, "delay_seconds"),
        ({"scheduled_at": AT, "execute_at": AT}, "execute_at"),
        ({"max_attempts": 3, "max_retries": 2}, "max_retries"),
        ({"delay_seconds": 5, "execute_at": AT}, "delay_seconds"),
        ({"delay": "5s", "execute_at": AT}, "delay"),
    ],
)
def test_two_spellings_of_one_thing_are_refused(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidJob) as raised:
        submission(**body)

    assert raised.value.field == field
    assert "not both" in raised.value.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 100}, "max_retries"),
        ({"max_retries": "two"}, "max_retries"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"delay_seconds": "1h"}, "delay_seconds"),
        ({"delay_seconds": 400 * 86400}, "delay_seconds"),
        ({"priority": "urgent"}, "priority"),
        ({"priority": "HIGH"}, "priority"),
        ({"execute_at": "tomorrow"}, "execute_at"),
    ],
)
def test_a_spelling_out_of_range_names_its_field(body: dict[str, Any], field: str) -> None:
    assert refused_field(**body) == field


@pytest.mark.parametrize(
    "recurring", [{"cron_expression": "0 0 * * *"}, {}, "daily", ["0 0 * * *"], True]
)
def test_a_recurring_job_is_refused_not_run_once(recurring: Any) -> None:
    with pytest.raises(InvalidJob) as raised:
        submission(recurring=recurring, payload={"to": "a@example.com"})

    assert raised.value.field == "recurring"
    assert "not available yet" in raised.value.message


def test_a_null_recurring_is_no_schedule() -> None:
    assert submission(recurring=None).type == "email"
