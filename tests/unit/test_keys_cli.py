"""`leveret keys add|list|revoke`, run through Typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from leveret.cli.app import app
from leveret.gateway.keys import KEY_PREFIX, KeyFile, KeyRing, Role, digest


@pytest.fixture(autouse=True)
def no_keys_file_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEVERET_API_KEYS_FILE", raising=False)


@pytest.fixture
def keys_path(tmp_path: Path) -> Path:
    return tmp_path / "api-keys"


def leveret(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def test_add_prints_a_key_that_authenticates(keys_path: Path) -> None:
    result = leveret("keys", "add", "ci", "--role", "operator", "--file", str(keys_path))
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith(KEY_PREFIX)
    assert "shown once" in result.stderr
    assert key not in keys_path.read_text()

    found = KeyRing(keys_path).authenticate(key)
    assert found is not None
    assert (found.name, found.role) == ("ci", Role.OPERATOR)


def test_add_as_json_and_the_file_from_the_environment(keys_path: Path) -> None:
    env = {"LEVERET_API_KEYS_FILE": str(keys_path)}
    result = leveret("keys", "add", "dash", "--role", "viewer", "--json", env=env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["name"], body["role"]) == ("dash", "viewer")
    assert [k.digest for k in KeyFile(keys_path).load()] == [digest(body["key"])]


def test_list_as_json_shows_names_roles_and_ids_never_keys(keys_path: Path) -> None:
    file = KeyFile(keys_path)
    ci = file.add("ci", Role.OPERATOR)
    boss = file.add("boss", Role.ADMIN)

    result = leveret("keys", "list", "--file", str(keys_path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"id": digest(ci)[:8], "name": "ci", "role": "operator"},
        {"id": digest(boss)[:8], "name": "boss", "role": "admin"},
    ]
    assert ci not in result.output
    assert digest(ci) not in result.output


def test_list_as_a_table(keys_path: Path) -> None:
    key = KeyFile(keys_path).add("ci", Role.VIEWER)
    result = leveret("keys", "list", "--file", str(keys_path))
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "ci" in line)
    assert digest(key)[:8] in row
    assert "viewer" in row
    assert key not in result.output


def test_revoke(keys_path: Path) -> None:
    file = KeyFile(keys_path)
    key = file.add("ci", Role.VIEWER)
    file.add("keep", Role.VIEWER)

    result = leveret("keys", "revoke", "ci", "--file", str(keys_path))
    assert result.exit_code == 0, result.output
    assert [k.name for k in file.load()] == ["keep"]
    assert KeyRing(keys_path).authenticate(key) is None


def test_revoking_an_unknown_key_exits_1(keys_path: Path) -> None:
    KeyFile(keys_path).add("ci", Role.VIEWER)
    result = leveret("keys", "revoke", "nobody", "--file", str(keys_path))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: no key named 'nobody' in {keys_path}"]


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "add", "ci", "--role", "admin"],
        ["keys", "list"],
        ["keys", "revoke", "ci"],
    ],
)
def test_no_keys_file_configured_exits_2_with_one_line(args: list[str]) -> None:
    result = leveret(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: no API keys file: pass --file or set LEVERET_API_KEYS_FILE"]
    assert "Traceback" not in result.output


def test_a_broken_keys_file_is_one_line_without_traceback(keys_path: Path) -> None:
    keys_path.write_text("# keys\nnot a key line\n")
    result = leveret("keys", "list", "--file", str(keys_path))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {keys_path}:2: ")
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_add_refuses_a_duplicate_name(keys_path: Path) -> None:
    KeyFile(keys_path).add("ci", Role.VIEWER)
    result = leveret("keys", "add", "ci", "--role", "admin", "--file", str(keys_path))
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert result.stdout == ""
    assert [k.role for k in KeyFile(keys_path).load()] == [Role.VIEWER]
