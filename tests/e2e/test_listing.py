"""End-to-end listings against a real `leveret dev`: filters, cursor pages, bad filters."""

from __future__ import annotations

from typing import Any

import httpx

from leveret.client import Client
from leveret.client.models import JobInfo
from tests.e2e.conftest import unique

API = "/api/v1"


async def _finished_batch(client: Client, tag: str) -> list[JobInfo]:
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
