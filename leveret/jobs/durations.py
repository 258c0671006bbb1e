"""Parsing human durations ("500ms", "1h30m", 2.5) into seconds."""

from __future__ import annotations

import math
import re

from leveret.jobs.errors import InvalidDuration

_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def parse_duration(value: str | int | float) -> float:
    """Seconds in `value`: a number of seconds or a Go-style string such as "1h30m".

    Raises InvalidDuration for anything else, negatives and non-finite numbers included, so
    that a typo is an error rather than a silent zero.
    """
    if isinstance(value, bool):
        raise InvalidDuration(str(value))
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            raise InvalidDuration(str(value)) from None
    else:
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = _parse_units(text, value)
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidDuration(str(value))
    return seconds


def _parse_units(text: str, original: str) -> float:
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(text):
        raise InvalidDuration(original)
    return total


_UNITS_DESCENDING = (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))


def format_duration(seconds: float) -> str:
    """`seconds` in the largest unit that holds it whole ("30d", "5m", "1.5s"), for
    messages; the inverse of parse_duration for such values."""
    for unit, size in _UNITS_DESCENDING:
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
