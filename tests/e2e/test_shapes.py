"""The wire shapes GopherQueue's SDKs depend on, checked raw against a running `leveret dev`:
key names, timestamps, durations, omitted keys, error bodies, headers, msgpack."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest

from tests.e2e.conftest import DevServer

API = "/api/v1"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
TIMESTAMP_KEYS = ("created_at", "updated_at", "scheduled_at", "started_at", "completed_at")
STATES = (
    "pending",
    "scheduled",
    "running",
    "delayed",
    "retrying",
    "completed",
    "failed",
    "dead_letter",
    "cancelled",
)
MiB = 1 << 20
ALWAYS = (
    *("id", "type", "queue", "state", "priority", "attempt", "max_attempts", "progress"),
    *("created_at", "updated_at"),
)


@pytest.fixture
async def http(dev: DevServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as raw:
        yield raw


async def submitted(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post(f"{API}/jobs", json=body)
    assert answer.status_code == 201, answer.text
    job: dict[str, Any] = answer.json()
    return job


async def finished(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Submit, wait until it ends, and answer the job as GET shows it."""
    job = await submitted(http, body)
    waited = await http.post(f"{API}/jobs/{job['id']}/wait", json={"timeout": "15s"})
    assert waited.json()["completed"] is True, waited.text
    answer = await http.get(f"{API}/jobs/{job['id']}")
    got: dict[str, Any] = answer.json()
    return got


def assert_job_shape(job: dict[str, Any]) -> None:
    """GopherQueue's key names, RFC 3339 microsecond timestamps, no empty optional keys."""
    for key in ALWAYS:
        assert key in job, (key, job)
    assert "status" not in job, job
    assert "attempts" not in job, job
    for key in TIMESTAMP_KEYS:
        if key in job:
            assert TIMESTAMP.match(job[key]), (key, job[key])
    for key, value in job.items():
        if key in ("payload", "result"):
            continue
        assert value is not None, (key, job)
        assert value not in ("", {}, []), (key, job)


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


async def test_a_failed_job_uses_gopherqueue_key_names(http: httpx.AsyncClient) -> None:
    rejected = await finished(http, {"type": "reject", "payload": {"reason": "nope"}})
    dead = await finished(http, {"type": "fail", "payload": {}, "max_attempts": 1})

    for job in (rejected, dead):
        assert_job_shape(job)
        assert job["attempt"] == 1
        assert job["last_error"]
    assert rejected["state"] == "failed"
    assert "nope" in rejected["last_error"]
    assert dead["state"] == "dead_letter"
    assert "demo failure" in dead["last_error"]


async def test_every_job_answer_has_the_right_timestamps_and_no_nulls(
    http: httpx.AsyncClient,
) -> None:
    tag = uuid.uuid4().hex
    job = await submitted(http, {"type": "echo", "payload": 1, "tags": {"run": tag}})
    # On a queue no worker consumes: its delay tiers then cannot disturb the other tests.
    delayed = await submitted(
        http, {"type": "echo", "queue": "alpha", "delay": "1h", "tags": {"run": tag}}
    )
    waited = (await http.post(f"{API}/jobs/{job['id']}/wait", json={"timeout": "10s"})).json()
    got = (await http.get(f"{API}/jobs/{job['id']}")).json()
    cancelled = (await http.post(f"{API}/jobs/{delayed['id']}/cancel", json={})).json()
    listed = (await http.get(f"{API}/jobs", params={"tag": f"run:{tag}"})).json()["jobs"]
    batch = (
        await http.post(f"{API}/jobs/batch", json={"jobs": [{"type": "echo", "payload": 2}]})
    ).json()

    answers = [job, delayed, got, cancelled, *listed, batch["results"][0]["job"]]
    for answer in answers:
        assert_job_shape(answer)
    assert delayed["state"] == "delayed"
    assert "scheduled_at" in delayed
    assert got["state"] == "completed"
    assert all(key in got for key in TIMESTAMP_KEYS if key != "scheduled_at")
    assert cancelled["state"] == "cancelled"
    assert "completed_at" in cancelled
    assert len(listed) == 2
    assert TIMESTAMP.match(waited["result"]["completed_at"])


async def test_durations_come_back_as_integer_nanoseconds(http: httpx.AsyncClient) -> None:
    text = await submitted(http, {"type": "echo", "timeout": "30s"})
    number = await submitted(http, {"type": "echo", "timeout": 1.5})
    compound = await submitted(http, {"type": "echo", "timeout": "1h30m"})

    assert text["timeout"] == 30_000_000_000
    assert number["timeout"] == 1_500_000_000
    assert compound["timeout"] == 5_400_000_000_000
    assert all(isinstance(j["timeout"], int) for j in (text, number, compound))


async def test_a_fresh_job_omits_its_empty_optional_keys(http: httpx.AsyncClient) -> None:
    job = await submitted(http, {"type": "echo"})

    assert_job_shape(job)
    for key in ("tags", "depends_on", "idempotency_key", "last_error", "completed_at", "timeout"):
        assert key not in job, (key, job)
    assert "payload" not in job
    assert "result" not in job


async def test_list_omits_payload_and_result_unless_included(http: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex
    job = await finished(http, {"type": "echo", "payload": {"p": 1}, "tags": {"run": tag}})
    plain = (await http.get(f"{API}/jobs", params={"tag": f"run:{tag}"})).json()["jobs"]
    full = (
        await http.get(f"{API}/jobs", params={"tag": f"run:{tag}", "include": "payload,result"})
    ).json()["jobs"]
    only_payload = (
        await http.get(f"{API}/jobs", params={"tag": f"run:{tag}", "include": "payload"})
    ).json()["jobs"]

    assert (job["payload"], job["result"]) == ({"p": 1}, {"p": 1})
    assert [j["id"] for j in plain] == [job["id"]]
    assert "payload" not in plain[0]
    assert "result" not in plain[0]
    assert (full[0]["payload"], full[0]["result"]) == ({"p": 1}, {"p": 1})
    assert only_payload[0]["payload"] == {"p": 1}
    assert "result" not in only_payload[0]


async def test_result_and_wait_shapes(http: httpx.AsyncClient) -> None:
    job = await submitted(http, {"type": "sleep", "payload": {"seconds": 0.2}})

    waited = await http.post(f"{API}/jobs/{job['id']}/wait", json={"timeout": "10s"})
    result = await http.get(f"{API}/jobs/{job['id']}/result")

    assert waited.status_code == 200
    wait = waited.json()
    assert set(wait) == {"id", "state", "completed", "success", "result"}
    assert (wait["id"], wait["state"], wait["completed"], wait["success"]) == (
        job["id"],
        "completed",
        True,
        True,
    )
    assert result.status_code == 200
    body = result.json()
    assert set(body) == {"job_id", "success", "output", "duration", "completed_at"}
    assert (body["job_id"], body["success"], body["output"]) == (job["id"], True, {"slept": 0.2})
    assert isinstance(body["duration"], int)
    assert 200_000_000 <= body["duration"] < 10_000_000_000
    assert TIMESTAMP.match(body["completed_at"])
    assert wait["result"] == body


async def test_a_failed_result_and_a_timed_out_wait(http: httpx.AsyncClient) -> None:
    failed = await finished(http, {"type": "reject", "payload": {"reason": "bad input"}})
    running = await submitted(http, {"type": "sleep", "payload": {"seconds": 3}})

    result = (await http.get(f"{API}/jobs/{failed['id']}/result")).json()
    timed_out = await http.post(f"{API}/jobs/{running['id']}/wait", json={"timeout": "300ms"})
    early = await http.get(f"{API}/jobs/{running['id']}/result")
    await http.post(f"{API}/jobs/{running['id']}/cancel", json={})

    assert result["success"] is False
    assert "bad input" in result["error"]
    assert "output" not in result or result["output"] is None
    body = timed_out.json()
    assert (body["id"], body["completed"], body["timed_out"]) == (running["id"], False, True)
    assert "result" not in body
    assert_error(early, 404, "not_found")


async def test_stats_shape(http: httpx.AsyncClient) -> None:
    await finished(http, {"type": "echo"})

    answer = await http.get(f"{API}/stats")

    assert answer.status_code == 200
    stats = answer.json()
    assert set(stats) == {"queue", "workers"}
    queue = stats["queue"]
    assert set(queue) == {*STATES, "total_jobs", "storage_bytes", "timestamp"}
    assert all(isinstance(queue[s], int) for s in (*STATES, "total_jobs", "storage_bytes"))
    assert queue["storage_bytes"] > 0  # the SQLite file and its WAL
    assert queue["total_jobs"] == sum(queue[s] for s in STATES)
    assert queue["completed"] >= 1
    assert TIMESTAMP.match(queue["timestamp"])
    assert stats["workers"]["consumers"] >= 1
    assert stats["workers"]["queues"]["default"] >= 1


async def test_batch_response_shape(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        f"{API}/jobs/batch",
        json={"jobs": [{"type": "echo", "payload": 1}, {"type": "echo", "priority": -1}]},
    )

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) == {"total", "accepted", "rejected", "results"}
    assert (body["total"], body["accepted"], body["rejected"]) == (2, 1, 1)
    good, bad = body["results"]
    assert set(good) == {"index", "success", "job"}
    assert (good["index"], good["success"]) == (0, True)
    assert_job_shape(good["job"])
    assert set(bad) == {"index", "success", "error", "error_code", "error_details"}
    assert (bad["index"], bad["success"]) == (1, False)
    assert isinstance(bad["error"], str)
    assert bad["error"].startswith("priority: ")
    assert bad["error_code"] == "validation_error"
    assert bad["error_details"]["field"] == "priority"


async def test_unknown_submit_fields_are_ignored(http: httpx.AsyncClient) -> None:
    job = await submitted(
        http, {"type": "echo", "payload": 1, "bogus": True, "extra": {"nested": [1, 2]}}
    )

    assert_job_shape(job)
    assert "bogus" not in job
    assert "extra" not in job


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "echo", "delay": "soon"}, "delay"),
        ({"type": "echo", "timeout": "forever"}, "timeout"),
        ({"type": "echo", "priority": 5}, "priority"),
        ({"type": "echo", "max_attempts": 101}, "max_attempts"),
        ({"payload": 1}, "type"),
    ],
)
async def test_a_bad_field_is_a_validation_error_naming_it(
    http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    answer = await http.post(f"{API}/jobs", json=body)

    error = assert_error(answer, 400, "validation_error")
    assert error["details"]["field"] == field


async def test_error_bodies_for_each_status(http: httpx.AsyncClient) -> None:
    done = await finished(http, {"type": "echo"})

    malformed = await http.post(
        f"{API}/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    bad_id = await http.get(f"{API}/jobs/123")
    unknown = await http.get(f"{API}/jobs/{uuid.uuid4()}")
    wrong_method = await http.put(f"{API}/stats", json={})
    conflict = await http.post(f"{API}/jobs/{done['id']}/cancel", json={})

    assert_error(malformed, 400, "invalid_request")
    assert_error(bad_id, 400, "invalid_request")
    assert_error(unknown, 404, "not_found")
    assert_error(wrong_method, 405, "method_not_allowed")
    assert_error(conflict, 409, "conflict")
    assert "Traceback" not in malformed.text


async def test_a_payload_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    big = await http.post(f"{API}/jobs", json={"type": "echo", "payload": "x" * (MiB + 10)})
    fits = await http.post(f"{API}/jobs", json={"type": "echo", "payload": "x" * (MiB - 100)})

    error = assert_error(big, 413, "payload_too_large")
    assert error["details"]["field"] == "payload"
    assert fits.status_code == 201


async def test_a_body_over_the_request_limit_is_413(http: httpx.AsyncClient) -> None:
    jobs = [{"type": "echo", "payload": "y" * (MiB // 2)} for _ in range(34)]  # > 16 MiB
    body = msgspec.json.encode({"jobs": jobs})
    assert len(body) > 16 * MiB

    answer = await http.post(
        f"{API}/jobs/batch", content=body, headers={"Content-Type": "application/json"}
    )

    assert_error(answer, 413, "payload_too_large")


async def test_every_response_carries_a_request_id(http: httpx.AsyncClient) -> None:
    job = await submitted(http, {"type": "echo"})
    answers = [
        await http.get(f"{API}/jobs/{job['id']}"),
        await http.get(f"{API}/jobs", params={"limit": 1}),
        await http.get(f"{API}/jobs/{uuid.uuid4()}"),
        await http.get(f"{API}/stats"),
        await http.get(f"{API}"),
        await http.get("/live"),
        await http.delete(f"{API}/jobs/{job['id']}"),
    ]
    echoed = await http.get(f"{API}/stats", headers={"X-Request-ID": "trace-me.42"})

    for answer in answers:
        assert answer.headers.get("x-request-id"), answer.request.url
    assert len({a.headers["x-request-id"] for a in answers}) == len(answers)
    assert echoed.headers["x-request-id"] == "trace-me.42"


async def test_the_api_index(http: httpx.AsyncClient) -> None:
    answer = await http.get(API)

    assert answer.status_code == 200
    body = answer.json()
    assert {"name", "version", "endpoints"} <= set(body)
    assert body["endpoints"]


async def test_msgpack_in_and_out(http: httpx.AsyncClient) -> None:
    body = msgspec.msgpack.encode(
        {"type": "echo", "payload": {"bin": [1, 2, 3]}, "tags": {"m": "p"}}
    )

    answer = await http.post(
        f"{API}/jobs",
        content=body,
        headers={"Content-Type": "application/msgpack", "Accept": "application/msgpack"},
    )
    as_json = await http.get(f"{API}/jobs/{msgspec.msgpack.decode(answer.content)['id']}")

    assert answer.status_code == 201
    assert answer.headers["content-type"].startswith("application/msgpack")
    job = msgspec.msgpack.decode(answer.content)
    assert_job_shape(job)
    assert (job["type"], job["tags"]) == ("echo", {"m": "p"})
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json()["payload"] == {"bin": [1, 2, 3]}


async def test_a_batch_item_missing_its_type_is_named(http: httpx.AsyncClient) -> None:
    jobs = [{"type": "echo"}, {"payload": 1}]

    atomic = await http.post(f"{API}/jobs/batch", json={"jobs": jobs, "atomic": True})
    loose = await http.post(f"{API}/jobs/batch", json={"jobs": jobs, "atomic": False})

    error = assert_error(atomic, 400, "validation_error")
    assert error["details"]["field"] == "jobs[1].type"
    assert loose.status_code == 201, loose.text
    item = loose.json()["results"][1]
    assert item["success"] is False
    assert item["error_details"]["field"] == "type"
    assert "type" in item["error"]
