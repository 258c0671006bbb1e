"""GopherQueue's SDKs against a running `leveret dev`: every key they read is in Leveret's
answers, with the type they expect.

The key lists are copied from the SDKs themselves (github.com/sa001gar/gopherqueue, `sdks/`):
a key the Python SDK indexes (`data["key"]`) raises KeyError when absent, and a key the
TypeScript types declare without `?` is taken to be there. Keys both read with a default
(`data.get`, `key?`) may be left out, so they are not listed.
"""

from __future__ import annotations

from typing import Any

import httpx

from leveret.jobs.rules import DEFAULT_MAX_ATTEMPTS
from tests.e2e.conftest import DevServer
from tests.e2e.sse import Frame, job_frames, open_events

API = "/api/v1"

# sdks/python/gopherqueue/models.py, `Job.from_dict` indexes these; sdks/javascript/src/
# types.ts, `interface Job`, requires the same and `progress`.
JOB_KEYS = {
    "id": str,
    "type": str,
    "state": str,
    "priority": int,
    "attempt": int,
    "max_attempts": int,
    "progress": float | int,  # a JSON number
    "created_at": str,
    "updated_at": str,
}
# models.py `JobState` and types.ts `type JobState`: a state outside these fails
# `JobState(data["state"])` in Python.
STATES = {
    "pending",
    "scheduled",
    "running",
    "retrying",
    "delayed",
    "completed",
    "failed",
    "dead_letter",
    "cancelled",
}
# models.py `JobResult.from_dict` indexes job_id and success; types.ts `interface JobResult`
# also requires duration (nanoseconds).
RESULT_KEYS = {"job_id": str, "success": bool, "duration": int}
# models.py `WaitResult.from_dict` and types.ts `interface WaitResult`.
WAIT_KEYS = {"id": str, "state": str, "completed": bool}
# models.py `BatchResult.from_dict` and types.ts `interface BatchResult`.
BATCH_KEYS = {"total": int, "accepted": int, "rejected": int, "results": list}
# types.ts `interface BatchJobResult`: index and success, `job?: Job`, `error?: string`
# (printed as is: an object shows as "[object Object]").
BATCH_ITEM_KEYS = {"index": int, "success": bool}
# types.ts `interface QueueStats` requires every one (models.py reads them with defaults);
# client.ts and client.py both read it from the answer's "queue".
STATS_KEYS = {
    **dict.fromkeys(
        (
            "pending",
            "scheduled",
            "running",
            "delayed",
            "completed",
            "failed",
            "dead_letter",
            "cancelled",
            "total_jobs",
            "storage_bytes",
        ),
        int,
    ),
    "timestamp": str,
}


def assert_keys(answer: dict[str, Any], keys: dict[str, Any], what: str) -> None:
    """`answer` has every one of `keys`, each of its type (a bool is not an int here)."""
    for key, kind in keys.items():
        assert key in answer, f"{what} lacks {key!r}: {answer}"
        value = answer[key]
        assert isinstance(value, kind), f"{what}[{key!r}] = {value!r}, not {kind}"
        assert not (isinstance(value, bool) and kind in (int, float | int)), (what, key)


def assert_job(job: dict[str, Any], what: str) -> None:
    """A job as both SDKs read it."""
    assert_keys(job, JOB_KEYS, what)
    assert job["state"] in STATES, (what, job["state"])
    assert job["max_attempts"] >= 1, (what, job)


async def submit(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post(f"{API}/jobs", json=body)
    assert answer.status_code == 201, answer.text
    job: dict[str, Any] = answer.json()
    return job


async def test_a_fresh_submit_without_max_attempts_has_every_job_key(
    http: httpx.AsyncClient,
) -> None:
    """GopherQueue's Python SDK raised KeyError 'max_attempts' on the first submit: the view
    left it out until a worker had run the job. A job in the future has not run."""
    job = await submit(http, {"type": "echo", "payload": {"to": "a"}, "delay": "1h"})
    listed = (await http.get(f"{API}/jobs", params={"limit": 1})).json()["jobs"]
    fetched = (await http.get(f"{API}/jobs/{job['id']}")).json()
    cancelled = (await http.post(f"{API}/jobs/{job['id']}/cancel", json={})).json()

    for what, answer in (("submit", job), ("get", fetched), ("cancel", cancelled)):
        assert_job(answer, what)
    assert listed
    assert_job(listed[0], "list")
    assert (job["state"], job["attempt"], job["progress"]) == ("delayed", 0, 0)
    assert job["max_attempts"] == DEFAULT_MAX_ATTEMPTS  # no worker has seen it yet


async def test_a_job_keeps_every_key_through_its_life(http: httpx.AsyncClient) -> None:
    """A job's own max_attempts, and the job after a run, a failure and a retry."""
    own = await submit(http, {"type": "echo", "max_attempts": 7})
    failed = await submit(http, {"type": "reject", "payload": {"reason": "no"}})
    for job in (own, failed):
        waited = await http.post(f"{API}/jobs/{job['id']}/wait", json={"timeout": "15s"})
        assert waited.json()["completed"] is True, waited.text
    done = (await http.get(f"{API}/jobs/{own['id']}")).json()
    dead = (await http.get(f"{API}/jobs/{failed['id']}")).json()
    retried = (await http.post(f"{API}/jobs/{failed['id']}/retry", json={})).json()

    for what, answer in (("own", own), ("done", done), ("dead", dead), ("retried", retried)):
        assert_job(answer, what)
    assert (own["max_attempts"], done["max_attempts"]) == (7, 7)
    assert (done["state"], dead["state"]) == ("completed", "failed")


async def test_a_batch_item_error_is_a_string(http: httpx.AsyncClient) -> None:
    """GopherQueue's TypeScript SDK printed an error object as "[object Object]"."""
    answer = await http.post(
        f"{API}/jobs/batch",
        json={"jobs": [{"type": "echo", "payload": 1}, {"type": "echo", "priority": 9}]},
    )

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert_keys(body, BATCH_KEYS, "batch")
    good, bad = body["results"]
    for item in (good, bad):
        assert_keys(item, BATCH_ITEM_KEYS, "batch item")
    assert good["success"] is True
    assert_job(good["job"], "batch item job")
    assert bad["success"] is False
    assert "job" not in bad
    assert isinstance(bad["error"], str)
    assert bad["error"].startswith("priority: ")
    assert bad["error_code"] == "validation_error"


async def test_stats_carry_every_queue_key_storage_bytes_included(
    http: httpx.AsyncClient,
) -> None:
    await submit(http, {"type": "echo"})

    stats = (await http.get(f"{API}/stats")).json()

    assert_keys(stats["queue"], STATS_KEYS, "stats.queue")
    assert stats["queue"]["storage_bytes"] > 0  # an SQLite file with jobs in it


async def test_wait_and_result_answers(http: httpx.AsyncClient) -> None:
    done = await submit(http, {"type": "echo", "payload": {"n": 1}})
    slow = await submit(http, {"type": "sleep", "payload": {"seconds": 5}})

    waited = (await http.post(f"{API}/jobs/{done['id']}/wait", json={"timeout": "15s"})).json()
    result = (await http.get(f"{API}/jobs/{done['id']}/result")).json()
    timed_out = (await http.post(f"{API}/jobs/{slow['id']}/wait", json={"timeout": "1s"})).json()
    await http.post(f"{API}/jobs/{slow['id']}/cancel", json={})

    assert_keys(waited, WAIT_KEYS, "wait")
    assert_keys(waited["result"], RESULT_KEYS, "wait.result")
    assert (waited["completed"], waited["success"]) == (True, True)
    assert_keys(result, RESULT_KEYS, "result")
    assert result["output"] == {"n": 1}
    assert_keys(timed_out, WAIT_KEYS, "timed-out wait")
    assert (timed_out["completed"], timed_out["timed_out"]) == (False, True)


async def test_each_event_carries_a_job_with_every_key(
    dev: DevServer, http: httpx.AsyncClient
) -> None:
    """Both SDKs parse an `event:` line, then the next `data:` line as JSON."""
    async with open_events(dev.url, type="echo") as reader:
        await reader.next()  # connected: the subscription is in place
        job = await submit(http, {"type": "echo"})

        def completed(frame: Frame) -> bool:
            return frame.event == "job.completed" and frame.data().get("id") == job["id"]

        frames = job_frames(await reader.until(completed), job["id"])

    assert [f.event for f in frames][-1] == "job.completed"
    for frame in frames:
        assert_job(frame.data(), f"{frame.event} data")


async def test_a_job_that_never_ran_has_a_result_with_a_duration(
    http: httpx.AsyncClient,
) -> None:
    """A job cancelled before it started: types.ts still requires `duration`."""
    job = await submit(http, {"type": "echo", "delay": "1h"})
    await http.post(f"{API}/jobs/{job['id']}/cancel", json={"reason": "not needed"})

    result = (await http.get(f"{API}/jobs/{job['id']}/result")).json()
    waited = (await http.post(f"{API}/jobs/{job['id']}/wait", json={"timeout": "1s"})).json()

    for what, answer in (("result", result), ("wait.result", waited["result"])):
        assert_keys(answer, RESULT_KEYS, what)
        assert (answer["success"], answer["duration"]) == (False, 0), what
    assert result["error"] == "not needed"
