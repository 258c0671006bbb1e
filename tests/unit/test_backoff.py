"""Retry backoff: how long a job waits before its next attempt."""

from __future__ import annotations

import math
import random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leveret.jobs.backoff import DEFAULT_BACKOFF, Backoff, BackoffStrategy

seconds = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
multipliers = st.floats(min_value=1, max_value=100, allow_nan=False)
attempts = st.integers(min_value=1, max_value=10**6)


@st.composite
def backoffs(draw: st.DrawFn, *, jitter: bool | None = None) -> Backoff:
    return Backoff(
        strategy=draw(st.sampled_from(BackoffStrategy)),
        initial=draw(seconds),
        max=draw(seconds),
        multiplier=draw(multipliers),
        jitter=draw(st.booleans()) if jitter is None else jitter,
    )


def test_defaults() -> None:
    assert Backoff() == DEFAULT_BACKOFF
    assert DEFAULT_BACKOFF.strategy is BackoffStrategy.EXPONENTIAL
    assert (DEFAULT_BACKOFF.initial, DEFAULT_BACKOFF.max) == (1.0, 3600.0)
    assert DEFAULT_BACKOFF.multiplier == 2.0
    assert DEFAULT_BACKOFF.jitter is True


@given(backoffs(), attempts)
def test_ceiling_never_exceeds_max(backoff: Backoff, attempt: int) -> None:
    ceiling = backoff.ceiling(attempt)
    assert 0 <= ceiling <= backoff.max
    assert math.isfinite(ceiling)


@given(st.floats(min_value=0.001, max_value=100), st.floats(min_value=1, max_value=1e5))
def test_exponential_doubles_until_the_cap(initial: float, cap: float) -> None:
    backoff = Backoff(initial=initial, max=cap, multiplier=2, jitter=False)
    for attempt in range(1, 40):
        assert backoff.ceiling(attempt) == min(initial * 2 ** (attempt - 1), cap)
    assert backoff.ceiling(40) == cap


def test_exponential_default_ladder() -> None:
    backoff = Backoff(jitter=False, max=30)
    assert [backoff.ceiling(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@given(backoffs(jitter=False), st.integers(min_value=1, max_value=200))
def test_exponential_never_shrinks(backoff: Backoff, attempt: int) -> None:
    backoff = msgspec.structs.replace(backoff, strategy=BackoffStrategy.EXPONENTIAL)
    assert backoff.ceiling(attempt + 1) >= backoff.ceiling(attempt)


@given(seconds, attempts)
def test_linear_is_initial_times_attempt(initial: float, attempt: int) -> None:
    backoff = Backoff(strategy=BackoffStrategy.LINEAR, initial=initial, max=1e18)
    assert backoff.ceiling(attempt) == initial * attempt


@given(seconds, multipliers, attempts)
def test_constant_is_constant(initial: float, multiplier: float, attempt: int) -> None:
    backoff = Backoff(
        strategy=BackoffStrategy.CONSTANT, initial=initial, max=1e6, multiplier=multiplier
    )
    assert backoff.ceiling(attempt) == initial


@pytest.mark.parametrize("attempt", [0, -1, -(10**6)])
def test_attempts_below_one_count_as_the_first(attempt: int) -> None:
    backoff = Backoff(initial=3, jitter=False)
    assert backoff.ceiling(attempt) == backoff.ceiling(1) == 3


@given(backoffs(jitter=True), attempts, st.integers(min_value=0, max_value=2**32))
def test_jittered_delay_lies_within_the_ceiling(backoff: Backoff, attempt: int, seed: int) -> None:
    delay = backoff.delay(attempt, random.Random(seed))
    assert 0 <= delay <= backoff.ceiling(attempt)


def test_jitter_spreads_the_delays() -> None:
    backoff = Backoff(initial=10, max=10, jitter=True)
    rng = random.Random(1234)
    delays = [backoff.delay(3, rng) for _ in range(200)]
    assert all(0 <= d <= 10 for d in delays)
    assert any(d != 10 for d in delays)
    assert len(set(delays)) > 100
    assert min(delays) < 2.5 < 7.5 < max(delays)


def test_jitter_without_a_generator_uses_the_module_one() -> None:
    backoff = Backoff(initial=10, max=10)
    delays = {backoff.delay(1) for _ in range(50)}
    assert all(0 <= d <= 10 for d in delays)
    assert len(delays) > 1


def test_seeded_jitter_is_reproducible() -> None:
    backoff = Backoff(initial=5)
    first = [backoff.delay(n, random.Random(7)) for n in range(1, 10)]
    again = [backoff.delay(n, random.Random(7)) for n in range(1, 10)]
    assert first == again


@given(backoffs(jitter=False), attempts)
def test_without_jitter_delay_is_the_ceiling(backoff: Backoff, attempt: int) -> None:
    assert backoff.delay(attempt, random.Random(0)) == backoff.ceiling(attempt)
    assert backoff.delay(attempt) == backoff.ceiling(attempt)


@pytest.mark.parametrize("strategy", list(BackoffStrategy))
@pytest.mark.parametrize("multiplier", [1.0, 1.5, 2.0, 3.0, 10.0, 100.0])
@pytest.mark.parametrize("attempt", [1000, 1001, 1025, 10**5, 10**6])
def test_huge_attempt_numbers_do_not_overflow(
    strategy: BackoffStrategy, multiplier: float, attempt: int
) -> None:
    backoff = Backoff(strategy=strategy, initial=1.5, max=7200, multiplier=multiplier)
    ceiling = backoff.ceiling(attempt)
    assert 0 <= ceiling <= 7200
    expected = {
        BackoffStrategy.EXPONENTIAL: 7200 if multiplier > 1 else 1.5,
        BackoffStrategy.LINEAR: min(1.5 * attempt, 7200),
        BackoffStrategy.CONSTANT: 1.5,
    }
    assert ceiling == expected[strategy]
    assert 0 <= backoff.delay(attempt, random.Random(attempt)) <= ceiling


@given(multipliers, attempts)
def test_zero_initial_stays_zero(multiplier: float, attempt: int) -> None:
    backoff = Backoff(initial=0, multiplier=multiplier, jitter=False)
    assert backoff.ceiling(attempt) == 0


def test_round_trips_through_msgpack_and_json() -> None:
    backoff = Backoff(strategy=BackoffStrategy.LINEAR, initial=0.5, max=60, jitter=False)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(backoff), type=Backoff) == backoff
    assert msgspec.json.decode(msgspec.json.encode(backoff), type=Backoff) == backoff
    assert msgspec.json.decode(b"{}", type=Backoff) == DEFAULT_BACKOFF


def test_is_frozen() -> None:
    with pytest.raises(AttributeError):
        DEFAULT_BACKOFF.initial = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"initial": -1}, "$.initial"),
        ({"initial": -0.001}, "$.initial"),
        ({"max": -5}, "$.max"),
        ({"multiplier": 0.5}, "$.multiplier"),
        ({"multiplier": 0}, "$.multiplier"),
        ({"multiplier": -2}, "$.multiplier"),
        ({"multiplier": 101}, "$.multiplier"),
        ({"strategy": "fibonacci"}, "$.strategy"),
        ({"initial": "1s"}, "$.initial"),
        ({"jitter": "yes"}, "$.jitter"),
    ],
)
def test_validation_rejects(document: dict[str, object], path: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=rf"at `\{path}`"):
        msgspec.convert(document, Backoff)
    with pytest.raises(msgspec.ValidationError, match=rf"at `\{path}`"):
        msgspec.json.decode(msgspec.json.encode(document), type=Backoff)


@given(st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False))
def test_any_negative_initial_is_rejected(initial: float) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"initial": initial}, Backoff)


@given(st.floats(min_value=-1e6, max_value=1, exclude_max=True, allow_nan=False))
def test_any_multiplier_below_one_is_rejected(multiplier: float) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"multiplier": multiplier}, Backoff)
