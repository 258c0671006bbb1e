"""End-to-end job flows against a real `leveret dev` (gateway + demo worker + RabbitMQ):
through the SDK (`Client`, `SyncClient`) and raw HTTP where the wire itself matters."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leveret.client import Client, SyncClient
from leveret.client.errors import ConflictError, JobNotFoundError, ValidationError
from leveret.client.models import Job
from tests.conditions import eventually
from tests.e2e.conftest import DevServer, start_dev, stop_dev

API = "/api/v1"


@pytest.fixture
async def client(dev: DevServer) -> AsyncIterator[Client]:
    async with Client(dev.url, timeout=15) as sdk:
        yield sdk


@pytest.fixture
async def http(dev: DevServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dev.url, timeout=15) as raw:
        yield raw


def unique() -> str:
    return uuid.uuid4().hex


async def test_submit_wait_result_through_the_async_sdk(client: Client) -> None:
    payload = {"greeting": "hello", "n": [1, 2, 3], "nested": {"ok": True}}
    job = await client.submit("echo", payload)
    assert job.type == "echo"

    done = await client.wait(job.id, timeout=10)

    assert (done.id, done.state, done.completed, done.success) == (job.id, "completed", True, True)
    assert done.result is not None
    assert done.result.output == payload
    assert (await client.get_result(job.id)).output == payload
    stored = await client.get(job.id)
    assert (stored.payload, stored.result) == (payload, payload)


def test_submit_wait_result_through_the_sync_sdk(dev: DevServer) -> None:
    payload = {"sync": unique()}
    with SyncClient(dev.url, timeout=15) as client:
        job = client.submit("echo", payload)
        done = client.wait(job.id, timeout=10)
        result = client.get_result(job.id)

    assert (done.state, done.success) == ("completed", True)
    assert result.success is True
    assert result.output == payload


async def test_submit_wait_result_over_raw_http(http: httpx.AsyncClient) -> None:
    payload = {"raw": unique(), "list": [None, 1.5, "x"]}

    submitted = await http.post(f"{API}/jobs", json={"type": "echo", "payload": payload})
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["id"]
    waited = await http.post(f"{API}/jobs/{job_id}/wait", json={"timeout": "10s"})
    result = await http.get(f"{API}/jobs/{job_id}/result")

    assert waited.status_code == 200
    assert waited.json()["state"] == "completed"
    assert waited.json()["result"]["output"] == payload
    assert result.status_code == 200
    assert result.json()["output"] == payload


async def test_wait_over_get_with_a_query_timeout(http: httpx.AsyncClient) -> None:
    submitted = await http.post(f"{API}/jobs", json={"type": "echo", "payload": 7})

    waited = await http.get(f"{API}/jobs/{submitted.json()['id']}/wait", params={"timeout": "10s"})

    assert waited.status_code == 200
    assert (waited.json()["completed"], waited.json()["result"]["output"]) == (True, 7)


async def test_idempotent_resubmit_answers_the_first_job(
    http: httpx.AsyncClient, client: Client
) -> None:
    key = f"order-{unique()}"
    body = {"type": "echo", "payload": {"n": 1}, "idempotency_key": key}

    first = await http.post(f"{API}/jobs", json=body)
    second = await http.post(f"{API}/jobs", json={**body, "payload": {"n": 2}})
    through_sdk = await client.submit("echo", {"n": 3}, idempotency_key=key)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"] == through_sdk.id
    assert (await client.get(through_sdk.id)).payload == {"n": 1}


async def test_an_atomic_batch_with_a_bad_item_stores_nothing(
    http: httpx.AsyncClient, client: Client
) -> None:
    tag = unique()
    good = {"type": "echo", "payload": 1, "tags": {"batch": tag}}
    bad = {**good, "priority": 9}

    answer = await http.post(
        f"{API}/jobs/batch", json={"jobs": [good, good, bad, good], "atomic": True}
    )
    with pytest.raises(ValidationError) as raised:
        await client.submit_batch([good, bad], atomic=True)

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["field"].startswith("jobs[2]")
    assert "jobs[2]" in error["message"]
    assert (raised.value.field or "").startswith("jobs[1]")
    assert len(await client.list(tags={"batch": tag})) == 0


async def test_a_non_atomic_batch_accepts_the_good_items(
    http: httpx.AsyncClient, client: Client
) -> None:
    tag = unique()
    good = {"type": "echo", "payload": 1, "tags": {"batch": tag}}

    answer = await http.post(
        f"{API}/jobs/batch",
        json={"jobs": [good, {**good, "max_attempts": 0}, good], "atomic": False},
    )

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["total"], body["accepted"], body["rejected"]) == (3, 2, 1)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["error"]["code"] == "validation_error"
    assert results[1]["error"]["message"]
    assert "job" not in results[1]
    accepted = {results[0]["job"]["id"], results[2]["job"]["id"]}
    listed = await client.list(tags={"batch": tag})
    assert {job.id for job in listed} == accepted


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


async def test_wait_returns_the_moment_the_job_completes(client: Client) -> None:
    job = await client.submit("sleep", {"seconds": 1.0})

    done = await client.wait(job.id, timeout=10)
    returned = time.time()
    finished = await client.get(job.id)

    assert done.state == "completed"
    assert finished.completed_at is not None
    gap = returned - finished.completed_at.timestamp()
    assert 0 <= gap < 0.5, f"wait returned {gap:.3f}s after the job completed"


async def test_wait_times_out_while_the_job_still_runs(client: Client) -> None:
    job = await client.submit("sleep", {"seconds": 5})

    started = time.monotonic()
    waited = await client.wait(job.id, timeout="1s")
    took = time.monotonic() - started

    assert (waited.timed_out, waited.completed, waited.success) == (True, False, False)
    assert waited.state not in ("completed", "failed", "dead_letter", "cancelled")
    assert 0.9 <= took < 4
    await client.cancel(job.id)  # leave the worker free for the next tests


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


async def test_a_delayed_job_waits_then_completes(client: Client) -> None:
    job = await client.submit("echo", {"later": True}, delay="1s")

    seen = await client.get(job.id)
    done = await client.wait(job.id, timeout=10)
    finished = await client.get(job.id)

    assert job.state == "delayed"
    assert seen.state in ("delayed", "scheduled", "running", "completed")
    assert job.scheduled_at is not None
    assert (job.scheduled_at - job.created_at).total_seconds() == pytest.approx(1, abs=0.1)
    assert (done.state, done.success) == ("completed", True)
    assert finished.started_at is not None
    assert (finished.started_at - job.created_at).total_seconds() >= 0.95


def test_a_long_delay_leaves_the_work_queue_alone(tmp_path: Path) -> None:
    """A job delayed by an hour waits in one delay tier: nothing reaches the work queue and
    other jobs run at normal speed. (Its own server: a flood would slow every later test.)"""
    server = start_dev(tmp_path)
    try:
        with SyncClient(server.url, timeout=15) as client:
            delayed = client.submit("echo", {"later": True}, delay="1h")
            # A real job as the clock: a flood would build up while it runs.
            assert client.wait(client.submit("sleep", {"seconds": 1.5}).id, timeout=10).success
            started = time.monotonic()
            quick = client.wait(client.submit("echo", 1).id, timeout=10)
            took = time.monotonic() - started
            default = next(q for q in client.queues() if q.name == "default")
            still = client.get(delayed.id)
    finally:
        stop_dev(server)

    assert default.ready == 0, f"{default.ready} messages flooded the work queue"
    assert quick.success is True
    assert took < 1.0
    assert still.state == "delayed"


async def test_submit_options_pass_through(client: Client) -> None:
    key = f"k-{unique()}"
    job = await client.submit(
        "report",
        {"x": 1},
        queue="alpha",
        priority=0,
        max_attempts=7,
        timeout="45s",
        idempotency_key=key,
        correlation_id="corr-1",
        tags={"tenant": "a", "run": key},
    )
    stored = await client.get(job.id)

    for seen in (job, stored):
        assert (seen.queue, seen.priority, seen.max_attempts) == ("alpha", 0, 7)
        assert seen.timeout == 45_000_000_000
        assert (seen.idempotency_key, seen.correlation_id) == (key, "corr-1")
        assert seen.tags == {"tenant": "a", "run": key}
    assert stored.payload == {"x": 1}
    listed = await client.list(queue="alpha", tags={"run": key})
    assert [j.id for j in listed] == [job.id]
    assert len(await client.list(queue="default", tags={"run": key})) == 0


async def _finished_batch(client: Client, tag: str) -> list[Job]:
    specs: list[dict[str, Any]] = [
        {"type": "echo", "payload": i, "tags": {"run": tag}} for i in range(5)
    ]
    specs.append({"type": "reject", "payload": {}, "tags": {"run": tag}})
    batch = await client.submit_batch(specs)
    assert batch.accepted == 6
    for job in batch.jobs:
        await client.wait(job.id, timeout=15)
    return batch.jobs


async def test_list_filters_and_cursor_pagination(http: httpx.AsyncClient, client: Client) -> None:
    tag = unique()
    jobs = await _finished_batch(client, tag)
    all_ids = {job.id for job in jobs}
    rejected = next(job.id for job in jobs if job.type == "reject")

    by_state = await client.list(state="completed", tags={"run": tag})
    failed = await client.list(state="failed", tags={"run": tag})
    by_type = await client.list(type="reject", tags={"run": tag})
    several = await client.list(state="completed,failed", tags={"run": tag})
    limited = await http.get(f"{API}/jobs", params={"tag": f"run:{tag}", "limit": 3})

    assert {j.id for j in by_state} == all_ids - {rejected}
    assert all(j.state == "completed" for j in by_state)
    assert [j.id for j in failed] == [rejected]
    assert [j.id for j in by_type] == [rejected]
    assert {j.id for j in several} == all_ids
    assert limited.status_code == 200
    assert limited.json()["count"] == len(limited.json()["jobs"]) == 3
    assert limited.json()["next_cursor"]

    walked: list[str] = []
    created: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"tag": f"run:{tag}", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await http.get(f"{API}/jobs", params=params)).json()
        pages += 1
        assert len(page["jobs"]) <= 2
        walked += [j["id"] for j in page["jobs"]]
        created += [j["created_at"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "pagination does not end"
    assert len(walked) == len(set(walked)) == 6
    assert set(walked) == all_ids
    assert created == sorted(created, reverse=True)  # newest first
    assert walked == sorted(walked, reverse=True)  # UUIDv7: time-sortable ids


async def test_list_rejects_a_bad_filter(http: httpx.AsyncClient) -> None:
    bad_state = await http.get(f"{API}/jobs", params={"state": "sleeping"})
    bad_tag = await http.get(f"{API}/jobs", params={"tag": "no-colon"})
    bad_limit = await http.get(f"{API}/jobs", params={"limit": 1001})

    assert bad_state.status_code == 400
    assert bad_state.json()["error"]["details"]["field"] == "state"
    assert bad_tag.status_code == 400
    assert bad_tag.json()["error"]["details"]["field"] == "tag"
    assert bad_limit.status_code == 400
    assert bad_limit.json()["error"]["code"] == "validation_error"
