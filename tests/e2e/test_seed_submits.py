"""The other job queues' submit bodies, sent as their examples send them, on the same route:
Gopher's (`execute_at`, `max_retries`, priority names; `recurring` refused until schedules
exist) and GoQuorra's (`delay_seconds`), alone and in a batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.e2e.conftest import unique

API = "/api/v1"


def later(hours: int) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


async def test_gophers_submit(http: httpx.AsyncClient) -> None:
    at = later(1)
    answer = await http.post(
        f"{API}/jobs",
        json={
            "type": "echo",
            "payload": {"to": "a@example.com"},
            "priority": "high",
            "max_retries": 0,
            "execute_at": at,
        },
    )

    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert (job["priority"], job["max_attempts"], job["state"]) == (1, 1, "delayed")
    assert datetime.fromisoformat(job["scheduled_at"]) == datetime.fromisoformat(at)
    await http.post(f"{API}/jobs/{job['id']}/cancel", json={})


async def test_goquorras_submit_runs_after_its_delay(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        f"{API}/jobs", json={"type": "echo", "payload": {"n": 1}, "delay_seconds": 0.5}
    )
    assert answer.status_code == 201, answer.text
    job = answer.json()
    waited = await http.post(f"{API}/jobs/{job['id']}/wait", json={"timeout": "15s"})
    done = (await http.get(f"{API}/jobs/{job['id']}")).json()

    assert job["state"] == "delayed"
    assert waited.json()["success"] is True
    started = datetime.fromisoformat(done["started_at"])
    assert (started - datetime.fromisoformat(done["created_at"])).total_seconds() >= 0.45


async def test_a_recurring_job_is_refused_and_nothing_runs(http: httpx.AsyncClient) -> None:
    tag = unique()
    body = {
        "type": "echo",
        "recurring": {"cron_expression": "0 0 * * *"},
        "tags": {"run": tag},
    }

    alone = await http.post(f"{API}/jobs", json=body)
    batch = await http.post(f"{API}/jobs/batch", json={"jobs": [body], "atomic": False})
    listed = (await http.get(f"{API}/jobs", params={"tag": f"run:{tag}"})).json()

    assert alone.status_code == 400, alone.text
    error = alone.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("validation_error", "recurring")
    assert "not available yet" in error["message"]
    item = batch.json()["results"][0]
    assert (item["success"], item["error_code"]) == (False, "validation_error")
    assert item["error"].startswith("recurring: ")
    assert listed["jobs"] == []


async def test_two_spellings_of_one_field_are_refused_naming_it(http: httpx.AsyncClient) -> None:
    both = await http.post(
        f"{API}/jobs", json={"type": "echo", "max_attempts": 3, "max_retries": 2}
    )
    batch = await http.post(
        f"{API}/jobs/batch",
        json={"jobs": [{"type": "echo"}, {"type": "echo", "delay": 1, "delay_seconds": 1}]},
    )
    atomic = await http.post(
        f"{API}/jobs/batch",
        json={"jobs": [{"type": "echo", "priority": "urgent"}], "atomic": True},
    )

    assert both.status_code == 400, both.text
    assert both.json()["error"]["details"]["field"] == "max_retries"
    results = batch.json()["results"]
    assert [r["success"] for r in results] == [True, False]
    assert results[1]["error_details"]["field"] == "delay_seconds"
    assert atomic.status_code == 400, atomic.text
    assert atomic.json()["error"]["details"]["field"] == "jobs[0].priority"
