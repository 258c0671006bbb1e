"""API keys: the keys file, the key ring and its reloads, roles, and the route guard."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.testing import TestClient

from leveret.gateway.auth import presented_key, requires
from leveret.gateway.keys import (
    KEY_PREFIX,
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


@pytest.fixture
def keys_path(tmp_path: Path) -> Path:
    return tmp_path / "conf" / "api-keys"


# --- roles and keys ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.OPERATOR, False),
        (Role.VIEWER, Role.ADMIN, False),
        (Role.OPERATOR, Role.VIEWER, True),
        (Role.OPERATOR, Role.OPERATOR, True),
        (Role.OPERATOR, Role.ADMIN, False),
        (Role.ADMIN, Role.VIEWER, True),
        (Role.ADMIN, Role.OPERATOR, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_role_ordering(held: Role, needed: Role, allowed: bool) -> None:
    assert held.allows(needed) is allowed


def test_role_parse() -> None:
    assert Role.parse("operator") is Role.OPERATOR
    with pytest.raises(ConfigurationError, match="viewer, operator, admin"):
        Role.parse("root")


def test_new_keys_are_prefixed_random_and_long() -> None:
    keys = {new_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(k.startswith(KEY_PREFIX) and len(k) >= len(KEY_PREFIX) + 43 for k in keys)


def test_digest_is_sha256_hex() -> None:
    assert digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_api_key_repr_hides_the_digest() -> None:
    key = ApiKey(name="ci", role=Role.VIEWER, digest="ab" * 32)
    assert "ab" * 32 not in repr(key)
    assert key.id == "abababab"


# --- the keys file -----------------------------------------------------------------------


def test_add_list_revoke_round_trip(keys_path: Path) -> None:
    file = KeyFile(keys_path)
    ci = file.add("ci", Role.OPERATOR)
    boss = file.add("boss.1", "admin")

    loaded = file.load()
    assert [(k.name, k.role) for k in loaded] == [("ci", Role.OPERATOR), ("boss.1", Role.ADMIN)]
    assert [k.digest for k in loaded] == [digest(ci), digest(boss)]

    assert file.revoke("ci") is True
    assert [k.name for k in file.load()] == ["boss.1"]
    assert file.revoke("ci") is False


def test_a_new_file_is_owner_only(keys_path: Path) -> None:
    KeyFile(keys_path).add("ci", Role.VIEWER)
    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o600


def test_rewrites_keep_the_files_mode(keys_path: Path) -> None:
    file = KeyFile(keys_path)
    file.add("ci", Role.VIEWER)
    keys_path.chmod(0o640)
    file.add("other", Role.VIEWER)
    file.revoke("ci")
    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o640


def test_the_file_never_holds_the_key(keys_path: Path) -> None:
    file = KeyFile(keys_path)
    key = file.add("ci", Role.ADMIN)
    text = keys_path.read_text()
    assert key not in text
    assert key[len(KEY_PREFIX) :] not in text
    assert text == f"{digest(key)} ci admin\n"


def test_revoke_keeps_comments_and_other_keys(keys_path: Path) -> None:
    keys_path.parent.mkdir()
    keys_path.write_text(
        f"# production keys\n\n{'a' * 64} keep viewer\n{'b' * 64} drop admin\n  # end\n"
    )
    assert KeyFile(keys_path).revoke("drop") is True
    assert keys_path.read_text() == f"# production keys\n\n{'a' * 64} keep viewer\n  # end\n"


def test_revoke_without_a_file_finds_nothing(keys_path: Path) -> None:
    assert KeyFile(keys_path).revoke("ci") is False
    assert not keys_path.exists()


def test_add_refuses_a_duplicate_name(keys_path: Path) -> None:
    file = KeyFile(keys_path)
    file.add("ci", Role.VIEWER)
    before = keys_path.read_text()
    with pytest.raises(ConfigurationError, match="'ci' already exists"):
        file.add("ci", Role.ADMIN)
    assert keys_path.read_text() == before


@pytest.mark.parametrize("name", ["", "has space", "slash/y", "x" * 65, "é"])
def test_add_refuses_a_bad_name(keys_path: Path, name: str) -> None:
    with pytest.raises(ConfigurationError, match="key name"):
        KeyFile(keys_path).add(name, Role.VIEWER)
    assert not keys_path.exists()


def test_add_refuses_an_unknown_role(keys_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown role"):
        KeyFile(keys_path).add("ci", "root")


def test_loading_a_missing_file_says_how_to_make_one(keys_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="leveret keys add"):
        KeyFile(keys_path).load()


SECRET = "lvk_" + "s" * 43
GOOD = f"{'c' * 64} good viewer"


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (f"{'d' * 64} two-fields", "2 fields"),
        (f"{'d' * 64} name admin extra", "4 fields"),
        (f"{SECRET} ci admin", "not a sha256 hex digest"),
        (f"{'D' * 64} ci admin", "not a sha256 hex digest"),
        (f"{'d' * 63} ci admin", "not a sha256 hex digest"),
        (f"{'d' * 64} b@d admin", "the name must be"),
        (f"{'d' * 64} ci root", "the role must be one of"),
        (f"{'d' * 64} good admin", "a second key named 'good'"),
    ],
)
def test_a_malformed_line_names_file_and_line(keys_path: Path, bad_line: str, reason: str) -> None:
    keys_path.parent.mkdir()
    keys_path.write_text(f"# keys\n\n{GOOD}\n{bad_line}\n")
    with pytest.raises(ConfigurationError, match=reason) as caught:
        KeyFile(keys_path).load()
    message = str(caught.value)
    assert message.startswith(f"{keys_path}:4: ")
    assert "d" * 32 not in message
    assert "c" * 32 not in message
    assert SECRET not in message


def test_add_refuses_to_touch_a_malformed_file(keys_path: Path) -> None:
    keys_path.parent.mkdir()
    keys_path.write_text("garbage\n")
    with pytest.raises(ConfigurationError, match=":1: "):
        KeyFile(keys_path).add("ci", Role.VIEWER)
    assert keys_path.read_text() == "garbage\n"


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


# --- the guard ---------------------------------------------------------------------------


@get("/read", guards=[requires(Role.VIEWER)])
async def read() -> str:
    return "read"


@get("/operate", guards=[requires(Role.OPERATOR)])
async def operate() -> str:
    return "operate"


@get("/administer", guards=[requires(Role.ADMIN)])
async def administer() -> str:
    return "administer"


ROUTES = ("/read", "/operate", "/administer")


def client_for(ring: KeyRing | None) -> TestClient[Litestar]:
    app = Litestar([read, operate, administer], state=State({"keys": ring}))
    return TestClient(app)


@pytest.fixture
def keys(keys_path: Path) -> dict[Role, str]:
    file = KeyFile(keys_path)
    return {role: file.add(f"{role.value}-key", role) for role in Role}


@pytest.fixture
def client(keys_path: Path, keys: dict[Role, str]) -> Iterator[TestClient[Litestar]]:
    with client_for(KeyRing(keys_path)) as client:
        yield client


@pytest.mark.parametrize("route", ROUTES)
def test_no_key_is_401(client: TestClient[Litestar], route: str) -> None:
    response = client.get(route)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("route", ROUTES)
def test_an_unknown_key_is_401_and_not_echoed(client: TestClient[Litestar], route: str) -> None:
    bad = new_key()
    response = client.get(route, headers={"X-API-Key": bad})
    assert response.status_code == 401
    assert bad not in response.text


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, {"/read"}),
        (Role.OPERATOR, {"/read", "/operate"}),
        (Role.ADMIN, set(ROUTES)),
    ],
)
@pytest.mark.parametrize("style", ["x-api-key", "bearer"])
def test_each_role_reaches_its_routes_and_no_more(
    client: TestClient[Litestar],
    keys: dict[Role, str],
    role: Role,
    allowed: set[str],
    style: str,
) -> None:
    key = keys[role]
    headers = {"X-API-Key": key} if style == "x-api-key" else {"Authorization": f"Bearer {key}"}
    for route in ROUTES:
        response = client.get(route, headers=headers)
        if route in allowed:
            assert (response.status_code, response.text) == (200, route.lstrip("/"))
        else:
            assert response.status_code == 403, route
            assert key not in response.text


@pytest.mark.parametrize("ring", [None, KeyRing(None)], ids=["none", "open-ring"])
def test_without_keys_everything_is_open(ring: KeyRing | None) -> None:
    with client_for(ring) as client:
        for route in ROUTES:
            assert client.get(route).status_code == 200


def test_an_app_without_a_ring_in_its_state_does_not_open_up() -> None:
    with TestClient(Litestar([read])) as client:
        assert client.get("/read").status_code == 500
