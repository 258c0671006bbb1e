"""API keys: the key ring (authenticating, reloading a changed file) and how a request
presents its key."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from leveret.gateway.auth import presented_key
from leveret.gateway.keys import (
    RELOAD_INTERVAL,
    ApiKey,
    KeyFile,
    KeyRing,
    Role,
    digest,
    new_key,
)
from leveret.jobs.errors import ConfigurationError


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def touch(path: Path, seconds: int) -> None:
    """Give `path` an mtime of its own, so a change is seen whatever the clock's resolution."""
    os.utime(path, ns=(seconds * 10**9, seconds * 10**9))


# --- the key ring ------------------------------------------------------------------------


def test_ring_authenticates_right_wrong_and_revoked_keys(keys_path: Path) -> None:
    file = KeyFile(keys_path)
    viewer = file.add("dash", Role.VIEWER)
    admin = file.add("boss", Role.ADMIN)
    clock = FakeClock()
    ring = KeyRing(keys_path, clock=clock)

    assert ring.open is False
    assert ring.authenticate(viewer) == ApiKey("dash", Role.VIEWER, digest(viewer))
    assert ring.authenticate(admin) == ApiKey("boss", Role.ADMIN, digest(admin))
    assert ring.authenticate(new_key()) is None
    assert ring.authenticate("") is None
    assert ring.authenticate(digest(admin)) is None  # the stored hash is not a key

    file.revoke("dash")
    touch(keys_path, 2_000_000_000)
    clock.now += RELOAD_INTERVAL
    assert ring.authenticate(viewer) is None
    assert ring.authenticate(admin) is not None


def test_ring_without_a_file_is_open() -> None:
    ring = KeyRing(None)
    assert ring.open is True
    assert ring.keys == ()
    assert ring.authenticate(new_key()) is None


def test_ring_refuses_a_missing_or_broken_file_at_start(keys_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        KeyRing(keys_path)
    keys_path.parent.mkdir()
    keys_path.write_text("not a key line\n")
    with pytest.raises(ConfigurationError, match=":1: "):
        KeyRing(keys_path)


def test_ring_reloads_a_changed_file_at_most_once_a_second(keys_path: Path) -> None:
    file = KeyFile(keys_path)
    file.add("first", Role.VIEWER)
    touch(keys_path, 2_000_000_000)
    clock = FakeClock()
    ring = KeyRing(keys_path, clock=clock)

    # Edit in place (same inode) and give the file a new mtime, as an editor would.
    key = new_key()
    with keys_path.open("a") as out:
        out.write(f"{digest(key)} second operator\n")
    touch(keys_path, 2_000_000_001)

    clock.now += RELOAD_INTERVAL / 2
    assert ring.authenticate(key) is None  # not looked at yet: checked at most once a second
    clock.now += RELOAD_INTERVAL / 2
    found = ring.authenticate(key)
    assert found is not None
    assert (found.name, found.role) == ("second", Role.OPERATOR)


def test_ring_does_not_reread_an_unchanged_file(keys_path: Path) -> None:
    file = KeyFile(keys_path)
    key = file.add("ci", Role.VIEWER)
    touch(keys_path, 2_000_000_000)
    clock = FakeClock()
    ring = KeyRing(keys_path, clock=clock)

    # Same size, same inode, same mtime: the ring trusts the mtime and keeps what it has.
    keys_path.write_text(keys_path.read_text().replace(" ci ", " cj "))
    touch(keys_path, 2_000_000_000)
    clock.now += RELOAD_INTERVAL
    assert [k.name for k in ring.keys] == ["ci"]
    assert ring.authenticate(key) is not None


def test_ring_keeps_its_keys_when_the_file_breaks(
    keys_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = KeyFile(keys_path).add("ci", Role.VIEWER)
    clock = FakeClock()
    ring = KeyRing(keys_path, clock=clock)

    keys_path.write_text(keys_path.read_text() + "half a line\n")
    touch(keys_path, 2_000_000_000)
    clock.now += RELOAD_INTERVAL
    with caplog.at_level(logging.ERROR, logger="leveret.gateway.auth"):
        assert ring.authenticate(key) is not None
    assert f"{keys_path}:2: " in caplog.text

    # Once fixed, the next check after the interval picks the file up again.
    keys_path.write_text("")
    touch(keys_path, 2_000_000_001)
    clock.now += RELOAD_INTERVAL
    assert ring.authenticate(key) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-api-key": "k1"}, "k1"),
        ({"authorization": "Bearer k2"}, "k2"),
        ({"authorization": "bearer  k3 "}, "k3"),
        ({"x-api-key": "k4", "authorization": "Bearer other"}, "k4"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, None),
        ({"authorization": "Bearer "}, None),
        ({"x-api-key": "  "}, None),
        ({}, None),
    ],
)
def test_presented_key(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(headers) == expected
