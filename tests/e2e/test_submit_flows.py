"""End-to-end submits against a real `leveret dev` (gateway + demo worker + RabbitMQ), through
the SDK (`Client`, `SyncClient`) and raw HTTP where the wire itself matters: submit, wait,
result; idempotent resubmits; batches; delays; submit options."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from leveret.client import Client, SyncClient
from leveret.client.errors import ValidationError
from tests.e2e.conftest import DevServer, start_dev, stop_dev, unique

API = "/api/v1"


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
    assert results[1]["error_code"] == "validation_error"
    assert results[1]["error"].startswith("max_attempts: ")
    assert "job" not in results[1]
    accepted = {results[0]["job"]["id"], results[2]["job"]["id"]}
    listed = await client.list(tags={"batch": tag})
    assert {job.id for job in listed} == accepted


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
