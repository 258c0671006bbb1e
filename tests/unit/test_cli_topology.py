"""`leveret topology show`: the description printed without a broker."""

from __future__ import annotations

from typer.testing import CliRunner

from leveret.cli import app


def test_topology_show_prints_every_exchange_and_the_work_queue() -> None:
    result = CliRunner().invoke(app, ["topology", "show", "--namespace", "acme", "-q", "mail"])
    assert result.exit_code == 0, result.output
    for name in ("acme.jobs", "acme.delay", "acme.dlx", "acme.events", "acme.control"):
        assert name in result.output
    assert "acme.q.mail" in result.output
    assert "acme.dlq.mail" in result.output


def test_every_command_group_is_registered() -> None:
    result = CliRunner().invoke(app, ["--help"])
    for command in ("worker", "serve", "dev", "submit", "wait", "dlq", "keys", "topology"):
        assert command in result.output
