"""End-to-end actions on one job against a real `leveret dev`: cancel, retry (from the DLQ),
delete, and the conflicts and errors of each."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from leveret.client import Client
from leveret.client.errors import ConflictError, JobNotFoundError
from tests.conditions import eventually
from tests.e2e.conftest import DevServer

API = "/api/v1"


async def test_cancelling_a_running_job_stops_it_for_good(client: Client, dev: DevServer) -> None:
    job = await client.submit("sleep", {"seconds": 30}, max_attempts=3)
    await eventually(
        lambda: client.get(job.id), lambda j: j.state == "running", timeout=10, what="running"
    )

    cancelled = await client.cancel(job.id, reason="no longer wanted")
    started = time.monotonic()
    ended = await client.wait(job.id, timeout=10)
    took = time.monotonic() - started

    assert cancelled.state == "cancelled"
    assert (ended.state, ended.completed, ended.success) == ("cancelled", True, False)
    assert took < 10
    # The worker really stopped the handler (it logs so), rather than letting it run on.
    await eventually(
        lambda: _log(dev),
        lambda log: f"job {job.id}: cancelled while running" in log,
        timeout=10,
        what="the worker stopping the handler",
    )
    # The worker is still healthy: a new job runs to completion.
    after = await client.submit("echo", "still alive")
    assert (await client.wait(after.id, timeout=10)).success is True
    # Not retried: a second wait and a read still see the first, cancelled attempt.
    again = await client.wait(job.id, timeout="1s")
    final = await client.get(job.id)
    assert again.state == "cancelled"
    assert (final.state, final.attempt) == ("cancelled", 1)


async def _log(dev: DevServer) -> str:
    return dev.log()


async def test_a_dead_lettered_job_retried_from_the_dlq_completes(client: Client) -> None:
    job = await client.submit("flaky", {"fail_times": 1}, max_attempts=1)

    dead = await client.wait(job.id, timeout=15)
    in_dlq = await client.dlq(type="flaky", limit=1000)
    retried = await client.dlq_retry(ids=[job.id])
    done = await client.wait(job.id, timeout=15)

    assert dead.state == "dead_letter"
    entry = next((e for e in in_dlq if e.id == job.id), None)
    assert entry is not None
    assert entry.state == "dead_letter"
    assert entry.reason
    assert "flaky failure" in entry.reason
    assert retried == 1
    assert (done.state, done.success) == ("completed", True)
    assert done.result is not None
    assert done.result.output == {"attempt": 2}
    assert job.id not in {e.id for e in await client.dlq(type="flaky", limit=1000)}


async def test_retrying_a_completed_job_is_a_conflict(
    http: httpx.AsyncClient, client: Client
) -> None:
    job = await client.submit("echo", 1)
    await client.wait(job.id, timeout=10)

    answer = await http.post(f"{API}/jobs/{job.id}/retry", json={})

    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "conflict"
    with pytest.raises(ConflictError):
        await client.retry(job.id)
    assert (await client.get(job.id)).state == "completed"


async def test_cancelling_a_finished_job_is_a_conflict(
    http: httpx.AsyncClient, client: Client
) -> None:
    job = await client.submit("echo", 1)
    await client.wait(job.id, timeout=10)

    answer = await http.post(f"{API}/jobs/{job.id}/cancel", json={"reason": "late"})

    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "conflict"
    with pytest.raises(ConflictError):
        await client.cancel(job.id)
    assert (await client.get(job.id)).state == "completed"


async def test_unknown_and_malformed_ids(http: httpx.AsyncClient, client: Client) -> None:
    unknown = str(uuid.uuid4())

    missing = await http.get(f"{API}/jobs/{unknown}")
    malformed = await http.get(f"{API}/jobs/not-a-uuid")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "invalid_request"
    with pytest.raises(JobNotFoundError) as raised:
        await client.get(unknown)
    assert raised.value.job_id == unknown


async def test_delete_answers_204_then_the_job_is_gone(
    http: httpx.AsyncClient, client: Client
) -> None:
    job = await client.submit("echo", 1)
    await client.wait(job.id, timeout=10)

    deleted = await http.delete(f"{API}/jobs/{job.id}")
    after = await http.get(f"{API}/jobs/{job.id}")
    again = await http.delete(f"{API}/jobs/{job.id}")

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert after.status_code == 404
    assert again.status_code == 404


async def test_deleting_a_running_job_stops_it(
    http: httpx.AsyncClient, client: Client, dev: DevServer
) -> None:
    job = await client.submit("sleep", {"seconds": 30})
    await eventually(
        lambda: client.get(job.id), lambda j: j.state == "running", timeout=10, what="running"
    )

    deleted = await http.delete(f"{API}/jobs/{job.id}")
    after = await http.get(f"{API}/jobs/{job.id}")

    assert deleted.status_code == 204
    assert after.status_code == 404
    await eventually(
        lambda: _log(dev),
        lambda log: f"job {job.id}: cancelled while running" in log,
        timeout=10,
        what="the worker stopping the handler",
    )
