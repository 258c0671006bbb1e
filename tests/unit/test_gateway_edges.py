"""The gateway's pure edges: how it writes times and durations, reads durations and cursors,
and names the field at fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from leveret.gateway.errors import field_in
from leveret.gateway.requests import cursor_of, seconds
from leveret.gateway.views import job_view, nanoseconds, timestamp
from leveret.jobs.errors import InvalidJob
from leveret.jobs.model import Job, new_job_id
from leveret.jobs.rules import DEFAULT_MAX_ATTEMPTS
from leveret.jobs.states import JobState


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC), "2026-11-22T10:00:00.000000Z"),
        (datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC), "2026-11-22T10:00:00.123456Z"),
        # another zone is written as UTC
        (
            datetime(2026, 11, 22, 11, 0, 0, 5, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-22T10:00:00.000005Z",
        ),
    ],
)
def test_timestamps_always_carry_six_digits_and_z(moment: datetime, written: str) -> None:
    assert timestamp(moment) == written


def test_a_job_view_omits_what_is_empty_and_gives_durations_in_nanoseconds() -> None:
    job = Job(id=new_job_id(), type="email", state=JobState.SCHEDULED, timeout=30.0)
    view = job_view(job)
    assert view.timeout == 30_000_000_000
    assert nanoseconds(0.5) == 500_000_000
    written = msgspec.json.decode(msgspec.json.encode(view))
    for empty in ("payload", "result", "tags", "depends_on", "last_error", "started_at"):
        assert empty not in written


@pytest.mark.parametrize(
    ("given", "expected"),
    [("30s", 30.0), ("1h30m", 5400.0), ("500ms", 0.5), (2.5, 2.5), ("10", 10.0), (None, None)],
)
def test_durations_are_strings_or_seconds(given: str | float | None, expected: float) -> None:
    assert seconds("delay", given) == expected


@pytest.mark.parametrize("given", ["soon", "-5s", -1, "1h"])
def test_a_bad_or_too_long_duration_names_its_field(given: str | float) -> None:
    with pytest.raises(InvalidJob) as raised:
        seconds("timeout", given, maximum=300)
    assert raised.value.field == "timeout"


def test_cursors_are_job_ids_in_canonical_form() -> None:
    job_id = new_job_id()
    assert cursor_of(job_id.upper()) == job_id
    assert cursor_of("") is None
    with pytest.raises(InvalidJob, match="cursor"):
        cursor_of("page-2")


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("Object missing required field `type`", "type"),
        ("Expected `int`, got `str` - at `$.priority`", "priority"),
        ("Object missing required field `strategy` - at `$.backoff`", "backoff.strategy"),
        ("Expected `object`, got `array`", None),
    ],
)
def test_the_field_at_fault_is_read_from_msgspec_messages(message: str, field: str | None) -> None:
    assert field_in(message) == field


def test_a_fresh_job_view_carries_max_attempts_and_progress() -> None:
    """GopherQueue's SDKs read both without a default: before a worker resolved the
    handler's default, the fleet default stands in; no progress yet is 0.0."""
    fresh = Job(id=new_job_id(), type="email", state=JobState.SCHEDULED)
    own = Job(id=new_job_id(), type="email", state=JobState.RUNNING, max_attempts=7, progress=40)

    written = msgspec.json.decode(msgspec.json.encode(job_view(fresh)))
    mine = msgspec.json.decode(msgspec.json.encode(job_view(own)))

    assert (written["max_attempts"], written["progress"]) == (DEFAULT_MAX_ATTEMPTS, 0.0)
    assert (mine["max_attempts"], mine["progress"]) == (7, 40.0)
