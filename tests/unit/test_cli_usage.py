"""Usage errors of the client commands, caught before any gateway is asked: `--tag` is
`key:value` in `submit` as in `list`, and `cancel` has no `--force`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from leveret.cli import app

# Nothing listens on port 1: a command that got past its usage checks exits 3 here.
NOWHERE = "http://127.0.0.1:1"


def leveret(*args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--url", NOWHERE])


def one_error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("submit", "echo", "--tag", "tenant=a"),
        ("submit", "--file", "-", "--tag", "tenant=a"),
        ("list", "--tag", "tenant=a"),
    ],
    ids=["submit", "submit-file", "list"],
)
def test_a_key_equals_value_tag_is_refused_naming_it(args: tuple[str, ...]) -> None:
    result = leveret(*args)
    assert result.exit_code == 2
    assert one_error_line(result) == "error: --tag 'tenant=a': write it as key:value (tenant:a)"


@pytest.mark.parametrize("tag", ["tenant", ":a", ""])
def test_a_tag_without_a_key_is_refused(tag: str) -> None:
    result = leveret("list", "--tag", "ok:1", "--tag", tag)
    assert result.exit_code == 2
    assert f"--tag {tag!r}" in one_error_line(result)


@pytest.mark.parametrize("command", ["submit", "list"])
def test_a_key_colon_value_tag_is_accepted_and_the_value_may_hold_colons(command: str) -> None:
    args = ("submit", "echo") if command == "submit" else ("list",)
    result = leveret(*args, "--tag", "tenant:a", "--tag", "origin:http://x:80")
    # Past the usage checks: the command went on to call the (absent) gateway.
    assert result.exit_code == 3, result.stderr
    assert "cannot reach the gateway" in one_error_line(result)


def test_both_help_texts_say_key_colon_value() -> None:
    for command in ("submit", "list"):
        shown = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0
        assert "key:value" in shown.stdout
        assert "key=value" not in shown.stdout


def test_cancel_has_no_force_option() -> None:
    # The gateway always stops a running job; a flag that promised otherwise was a lie.
    result = leveret("cancel", "01234567-89ab-7def-8123-456789abcdef", "--force")
    assert result.exit_code == 2
    assert "--force" in result.stderr
    shown = CliRunner().invoke(app, ["cancel", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "--force" not in shown.stdout
    assert "--reason" in shown.stdout
