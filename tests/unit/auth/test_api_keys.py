"""API keys: roles, the keys themselves, and the keys file (add, list, revoke, modes)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from leveret.gateway.keys import (
    KEY_PREFIX,
    ApiKey,
    KeyFile,
    Role,
    digest,
    new_key,
)
from leveret.jobs.errors import ConfigurationError

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
