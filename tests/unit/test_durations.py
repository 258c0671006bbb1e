"""Parsing human durations into seconds."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leveret.jobs.durations import parse_duration
from leveret.jobs.errors import ConfigurationError, InvalidDuration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2h45m30s", 9930.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        ("250us", 0.00025),
        ("2.5", 2.5),
        ("0", 0.0),
        (" 30s ", 30.0),
        (2, 2.0),
        (0.25, 0.25),
        (0, 0.0),
    ],
)
def test_parses(value: str | float, seconds: float) -> None:
    parsed = parse_duration(value)
    assert isinstance(parsed, float)
    assert math.isclose(parsed, seconds, rel_tol=1e-12)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "abc",
        "5x",
        "1h30",
        "h",
        "1h 30m",
        "30s5",
        "-1",
        "-5s",
        "nan",
        "inf",
        "-inf",
        "1e400",
        True,
        False,
        -3,
        -0.5,
        math.nan,
        math.inf,
        10**400,
    ],
    ids=lambda value: repr(value)[:24],
)
def test_rejects(value: str | float) -> None:
    with pytest.raises(InvalidDuration) as caught:
        parse_duration(value)
    assert caught.value.value == str(value)
    assert repr(str(value)) in str(caught.value)


def test_invalid_duration_is_a_configuration_and_value_error() -> None:
    with pytest.raises(ConfigurationError):
        parse_duration("soon")
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=59))
def test_hours_and_minutes_add_up(hours: int, minutes: int) -> None:
    assert parse_duration(f"{hours}h{minutes}m") == hours * 3600 + minutes * 60


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_numbers_are_seconds(seconds: float) -> None:
    assert parse_duration(seconds) == seconds
    assert parse_duration(repr(seconds)) == seconds


@given(st.text(max_size=20))
def test_any_text_parses_or_raises_invalid_duration(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except InvalidDuration:
        return
    assert math.isfinite(seconds)
    assert seconds >= 0
