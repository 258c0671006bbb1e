"""The client commands (`leveret submit`, `wait`, `list`, `dlq …`) run as a user runs them:
a separate `python -m leveret` process talking to a real `leveret dev`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leveret.client import Client, SyncClient
from leveret.client.models import JobInfo
from leveret.gateway.keys import KeyFile, Role
from leveret.jobs.states import JobState
from tests.conditions import eventually
from tests.e2e.conftest import DevServer, free_port, start_dev, stop_dev

CLI_TIMEOUT = 60.0


def cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `leveret ARGS` to its end. stdin is always a pipe, never a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "leveret", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def leveret(dev: DevServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `leveret ARGS --url <dev>`."""
    return cli(*args, "--url", dev.url, env=dev.env, stdin=stdin)


def answer(result: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON document a `--json` command printed, once it succeeded."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's stderr, checked to be a single `error:` line and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def job_in_state(dev: DevServer, job_id: str, states: set[JobState]) -> JobInfo:
    """The job once it is in one of `states` (checked through the SDK)."""

    async def probe() -> JobInfo:
        async with Client(dev.url, timeout=10) as client:
            return await client.get(job_id)

    what = f"job {job_id} in {sorted(states)}"
    return asyncio.run(eventually(probe, lambda job: job.state in states, what=what))


@pytest.fixture
def sleeper(dev: DevServer) -> Iterator[str]:
    """A long `sleep` job, cancelled at the end so that it does not hold a worker slot."""
    job_id = answer(leveret(dev, "submit", "sleep", '{"seconds": 30}', "--json"))["id"]
    yield job_id
    with SyncClient(dev.url) as client:
        if not client.get(job_id).is_terminal:
            client.cancel(job_id, "test over")


def test_submit_json_then_wait_exits_0_with_the_result(dev: DevServer) -> None:
    payload = {"greeting": "hello", "n": [1, 2, 3]}
    submitted = answer(leveret(dev, "submit", "echo", json.dumps(payload), "--json"))
    assert submitted["type"] == "echo"

    waited = answer(leveret(dev, "wait", submitted["id"], "--json"))
    assert (waited["id"], waited["state"], waited["result"]) == (
        submitted["id"],
        "completed",
        payload,
    )

    # For people (and `RESULT=$(leveret wait …)`), the result alone is printed.
    again = leveret(dev, "wait", submitted["id"])
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == payload


def test_submit_reads_the_payload_from_stdin_and_waits(dev: DevServer) -> None:
    result = leveret(dev, "submit", "echo", "-", "--wait", stdin='{"from": "stdin"}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"from": "stdin"}


def test_submit_wait_of_a_failing_job_exits_1(dev: DevServer) -> None:
    message = f"boom-{uuid.uuid4().hex[:8]}"
    result = leveret(
        dev, "submit", "fail", json.dumps({"message": message}), "--max-attempts", "1", "--wait"
    )
    assert result.returncode == 1
    line = one_error_line(result)
    assert "dead_letter" in line
    assert message in line


def test_json_outputs_carry_the_expected_keys(dev: DevServer) -> None:
    tag = uuid.uuid4().hex
    done = answer(
        leveret(dev, "submit", "echo", '{"k": 1}', "--tag", f"run:{tag}", "--wait", "--json")
    )
    assert done["state"] == "completed"
    job_id = done["id"]

    job = answer(leveret(dev, "get", job_id, "--json"))
    assert {"id", "type", "state", "attempt", "tags", "payload", "result"} <= job.keys()
    assert (job["id"], job["tags"], job["payload"]) == (job_id, {"run": tag}, {"k": 1})

    page = answer(leveret(dev, "list", "--tag", f"run:{tag}", "--json"))
    assert {"jobs", "count", "next_cursor"} <= page.keys()
    assert [found["id"] for found in page["jobs"]] == [job_id]

    # No --url: LEVERET_URL says where the gateway is.
    stats = answer(cli("stats", "--json", env={**dev.env, "LEVERET_URL": dev.url}))
    assert {"completed", "running", "dead_letter", "total_jobs", "workers"} <= stats.keys()
    assert stats["completed"] >= 1
    assert stats["workers"]["consumers"] >= 1

    queues = answer(leveret(dev, "queues", "--json"))["queues"]
    default = next(queue for queue in queues if queue["name"] == "default")
    assert {"ready", "consumers", "dlq", "counts"} <= default.keys()
    assert default["counts"]["completed"] >= 1


def test_human_tables_show_the_job_id(dev: DevServer) -> None:
    done = answer(leveret(dev, "submit", "echo", '{"table": true}', "--wait", "--json"))
    job_id = done["id"]

    listed = leveret(dev, "list", "--type", "echo", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if job_id in line)
    assert "completed" in row

    shown = leveret(dev, "get", job_id)
    assert shown.returncode == 0, shown.stderr
    assert job_id in shown.stdout
    assert '{"table": true}' in shown.stdout


def test_cancel_stops_a_running_sleep_job(dev: DevServer, sleeper: str) -> None:
    job_in_state(dev, sleeper, {JobState.RUNNING})

    cancelled = answer(leveret(dev, "cancel", sleeper, "--reason", "no longer wanted", "--json"))
    assert cancelled["state"] == "cancelled"
    with SyncClient(dev.url) as client:
        stored = client.get(sleeper)
    assert stored.state == "cancelled"
    assert stored.progress < 100  # stopped, not left to finish

    # A finished job cannot be cancelled again: the gateway refuses (409), exit 1.
    again = leveret(dev, "cancel", sleeper)
    assert again.returncode == 1
    assert "cancel" in one_error_line(again)


def test_wait_that_times_out_exits_5(dev: DevServer, sleeper: str) -> None:
    result = leveret(dev, "wait", sleeper, "--timeout", "300ms", "--json")
    assert result.returncode == 5
    assert json.loads(result.stdout)["id"] == sleeper  # still one document for scripts
    assert "still" in one_error_line(result)


def test_dlq_list_retry_purge_round_trip(dev: DevServer) -> None:
    reason = f"no-{uuid.uuid4().hex[:8]}"
    rejected = leveret(dev, "submit", "reject", json.dumps({"reason": reason}), "--wait", "--json")
    assert rejected.returncode == 1
    assert "failed" in one_error_line(rejected)
    job_id = json.loads(rejected.stdout)["id"]

    entries = answer(leveret(dev, "dlq", "list", "--type", "reject", "--json"))["jobs"]
    assert [(e["id"], e["state"], e["reason"]) for e in entries] == [(job_id, "failed", reason)]

    assert answer(leveret(dev, "dlq", "retry", "--id", job_id, "--json")) == {"retried": 1}
    # Replayed, the job runs again and is rejected again.
    again = leveret(dev, "wait", job_id, "--json")
    assert again.returncode == 1
    assert (json.loads(again.stdout)["state"], json.loads(again.stdout)["attempt"]) == (
        "failed",
        2,
    )

    # With stdin not a terminal nobody can answer the question: --yes is required.
    unconfirmed = leveret(dev, "dlq", "purge")
    assert unconfirmed.returncode == 2
    assert "--yes" in one_error_line(unconfirmed)
    with SyncClient(dev.url) as client:
        assert [entry.id for entry in client.dlq(type="reject")] == [job_id]

        assert answer(leveret(dev, "dlq", "purge", "--yes", "--json"))["purged"] >= 1
        assert client.dlq().count == 0
        assert client.stats().failed == 0


def test_submit_file_sends_every_line_and_they_complete(dev: DevServer, tmp_path: Path) -> None:
    batch = uuid.uuid4().hex
    lines = [json.dumps({"type": "echo", "payload": {"i": i}}) for i in range(50)]
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("\n".join(lines) + "\n")

    submitted = answer(
        leveret(dev, "submit", "--file", str(jobs_file), "--tag", f"batch:{batch}", "--json")
    )
    assert (submitted["total"], submitted["accepted"], submitted["rejected"]) == (50, 50, 0)
    assert len(set(submitted["ids"])) == 50

    with SyncClient(dev.url) as client:
        outputs = [client.wait(job_id, timeout=20) for job_id in submitted["ids"]]
    assert all(done.state == "completed" for done in outputs)
    assert sorted(done.result.output["i"] for done in outputs if done.result) == list(range(50))

    listed = answer(leveret(dev, "list", "--tag", f"batch:{batch}", "--limit", "30", "--json"))
    assert listed["count"] == 30
    every = answer(leveret(dev, "list", "--tag", f"batch:{batch}", "--all", "--json"))
    assert sorted(job["id"] for job in every["jobs"]) == sorted(submitted["ids"])


def test_bad_json_payload_exits_2_with_one_line(dev: DevServer) -> None:
    result = leveret(dev, "submit", "echo", '{"unclosed": ')
    assert result.returncode == 2
    assert "not valid JSON" in one_error_line(result)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("job_id", "code"),
    [("01234567-89ab-7def-8123-456789abcdef", 1), ("not-a-uuid", 2)],
    ids=["unknown-id-404", "malformed-id-400"],
)
def test_get_of_a_missing_job(dev: DevServer, job_id: str, code: int) -> None:
    result = leveret(dev, "get", job_id)
    assert result.returncode == code
    one_error_line(result)


def test_unreachable_gateway_exits_3_with_one_line(dev: DevServer) -> None:
    port = free_port()
    result = cli("stats", "--url", f"http://127.0.0.1:{port}", env=dev.env)
    assert result.returncode == 3
    line = one_error_line(result)
    assert f"cannot reach the gateway at http://127.0.0.1:{port}" in line


def test_without_url_the_gateway_is_where_leveret_http_says(dev: DevServer) -> None:
    port = free_port()
    env = {key: value for key, value in dev.env.items() if key != "LEVERET_URL"}
    result = cli("queues", env={**env, "LEVERET_HTTP": f"0.0.0.0:{port}"})
    assert result.returncode == 3
    assert f"at http://127.0.0.1:{port} " in one_error_line(result)


def test_missing_or_weak_api_key_exits_4(dev: DevServer, tmp_path: Path) -> None:
    keys = tmp_path / "api-keys"
    env = dev.env
    viewer = KeyFile(keys).add("ci", Role.VIEWER)
    secured = start_dev(tmp_path, "--api-keys-file", str(keys))
    try:
        anonymous = cli("stats", "--url", secured.url, env=env)
        assert anonymous.returncode == 4
        one_error_line(anonymous)

        keyed_env = {**env, "LEVERET_API_KEY": viewer}
        stats = answer(cli("stats", "--json", "--url", secured.url, env=keyed_env))
        assert stats["total_jobs"] == 0
        # A viewer may read but not submit: 403.
        refused = cli("submit", "echo", "--url", secured.url, env=keyed_env)
        assert refused.returncode == 4
        one_error_line(refused)
    finally:
        stop_dev(secured)


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_gateway_without_rabbitmq_exits_3_with_one_line(
    dev: DevServer, tmp_path: Path, command: str
) -> None:
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    result = cli(
        command,
        "--amqp-url",
        nowhere,
        "--store-url",
        f"sqlite:///{tmp_path}/unused.db",
        "--http",
        f"127.0.0.1:{free_port()}",
        env=dev.env,
    )
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "RabbitMQ at amqp://guest:***@127.0.0.1:" in errors[0]  # the password masked


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_gateway_with_a_malformed_address_exits_2_before_connecting(
    dev: DevServer, command: str
) -> None:
    result = cli(command, "--http", "nowhere", env=dev.env)
    assert result.returncode == 2
    assert one_error_line(result) == "error: LEVERET_HTTP 'nowhere': use host:port"
