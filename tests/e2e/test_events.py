"""Server-sent events end to end: the frames a real `leveret dev` sends as jobs move, read
raw off the wire (framing) and through the SDK's `events()`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import cast

import httpx
import pytest

from leveret.client import Client
from leveret.client.models import Event
from tests.e2e.conftest import DevServer
from tests.e2e.sse import Frame, FrameReader, job_frames, open_events

API = "/api/v1"
CONNECTED = b'event: connected\ndata: {"status":"connected"}'
API_EVENT_NAMES = {
    "job.created",
    "job.started",
    "job.progress",
    "job.completed",
    "job.retrying",
    "job.failed",
    "job.dead_lettered",
    "job.cancelled",
    "job.retried",
    "job.deleted",
}


@pytest.fixture
async def http(dev: DevServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dev.url, timeout=15) as raw:
        yield raw


async def submit(http: httpx.AsyncClient, body: dict[str, object]) -> str:
    answer = await http.post(f"{API}/jobs", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def ends(job_id: str, name: str) -> Callable[[Frame], bool]:
    """A frame predicate: the `name` event of `job_id`."""

    def accept(frame: Frame) -> bool:
        return frame.event == name and frame.data().get("id") == job_id

    return accept


async def read_until(reader: FrameReader, job_id: str, name: str) -> list[Frame]:
    frames = await reader.until(ends(job_id, name))
    return job_frames(frames, job_id)


def names(frames: list[Frame]) -> list[str]:
    return [f.event or "" for f in frames]


def assert_framed(frame: Frame) -> None:
    """`event:` first, then exactly one `data:` line holding one-line JSON, then `id:`."""
    assert frame.lines[0].startswith("event: job."), frame.raw
    assert frame.lines[1].startswith("data: {"), frame.raw
    assert sum(1 for line in frame.lines if line.startswith("data:")) == 1, frame.raw
    assert frame.id, frame.raw
    assert frame.lines[2] == f"id: {frame.id}", frame.raw
    assert len(frame.lines) == 3, frame.raw


async def test_the_stream_starts_with_a_connected_frame(dev: DevServer) -> None:
    async with open_events(dev.url) as reader:
        first = await reader.next()

        assert reader.response.headers["content-type"].startswith("text/event-stream")
        assert reader.response.headers.get("x-request-id")
        assert first.raw == CONNECTED
        assert first.data() == {"status": "connected"}


async def test_an_echo_job_is_created_started_completed_in_well_formed_frames(
    dev: DevServer, http: httpx.AsyncClient
) -> None:
    async with open_events(dev.url, type="echo") as reader:
        assert (await reader.next()).raw == CONNECTED
        job_id = await submit(http, {"type": "echo", "payload": {"n": 1}})
        frames = await read_until(reader, job_id, "job.completed")
        # A second job as a barrier: anything more about the first would arrive before its end.
        later_id = await submit(http, {"type": "echo", "payload": {"n": 2}})
        between = await reader.until(ends(later_id, "job.completed"))

    assert names(frames) == ["job.created", "job.started", "job.completed"]
    assert job_frames(between, job_id) == []
    for frame in frames:
        assert_framed(frame)
    states = [f.data()["state"] for f in frames]
    assert states[1:] == ["running", "completed"]
    assert states[0] in ("scheduled", "pending")
    assert all("payload" not in f.data() and "result" not in f.data() for f in frames)
    assert len({f.id for f in frames}) == 3
    assert {f.data()["type"] for f in between if f.event != "connected"} == {"echo"}


async def test_the_sdk_yields_the_same_events(dev: DevServer, http: httpx.AsyncClient) -> None:
    seen: list[Event] = []
    async with Client(dev.url, timeout=15) as client, asyncio.timeout(30):
        # The SDK declares an AsyncIterator; it is a generator, closed here explicitly.
        stream = cast("AsyncGenerator[Event, None]", client.events(type="echo"))
        first = await anext(stream)
        job_id = await submit(http, {"type": "echo", "payload": "sdk"})
        async for event in stream:
            if event.job is not None and event.job.id == job_id:
                seen.append(event)
                if event.event == "job.completed":
                    break
        await stream.aclose()

    assert (first.event, first.data) == ("connected", {"status": "connected"})
    assert [e.event for e in seen] == ["job.created", "job.started", "job.completed"]
    assert all(e.id for e in seen)
    assert seen[-1].job is not None
    assert seen[-1].job.state == "completed"


async def test_a_failing_job_retries_then_is_dead_lettered(
    dev: DevServer, http: httpx.AsyncClient
) -> None:
    body = {
        "type": "fail",
        "payload": {"message": f"boom-{uuid.uuid4().hex}"},
        "max_attempts": 2,
        "backoff": {"strategy": "constant", "initial": "100ms", "jitter": False},
    }
    async with open_events(dev.url, type="fail") as reader:
        await reader.next()
        job_id = await submit(http, body)
        frames = await read_until(reader, job_id, "job.dead_lettered")
        retried = await http.post(f"{API}/jobs/{job_id}/retry", json={})
        again = await read_until(reader, job_id, "job.dead_lettered")

    assert names(frames) == [
        "job.created",
        "job.started",
        "job.retrying",
        "job.started",
        "job.dead_lettered",
    ]
    retrying, last = frames[2].data(), frames[-1].data()
    assert (retrying["state"], retrying["attempt"]) == ("retrying", 1)
    assert body["payload"]["message"] in retrying["last_error"]  # type: ignore[index]
    assert (last["state"], last["attempt"]) == ("dead_letter", 2)
    assert retried.status_code == 200
    assert names(again) == ["job.retried", "job.started", "job.dead_lettered"]
    assert again[-1].data()["attempt"] == 3


async def test_cancelling_a_running_job_sends_cancelled(
    dev: DevServer, http: httpx.AsyncClient
) -> None:
    async with open_events(dev.url, type="sleep") as reader:
        await reader.next()
        job_id = await submit(http, {"type": "sleep", "payload": {"seconds": 30}})
        await read_until(reader, job_id, "job.started")
        cancel = await http.post(f"{API}/jobs/{job_id}/cancel", json={"reason": "stop"})
        frames = await read_until(reader, job_id, "job.cancelled")

    assert cancel.status_code == 200
    assert set(names(frames)) <= {"job.progress", "job.cancelled"}
    assert frames[-1].data()["state"] == "cancelled"
    assert frames[-1].data()["id"] == job_id


async def test_a_job_id_filter_sends_only_that_jobs_events(
    dev: DevServer, http: httpx.AsyncClient
) -> None:
    job_id = await submit(http, {"type": "echo", "payload": 1, "delay": "1s"})
    async with open_events(dev.url, job_id=job_id) as reader:
        await reader.next()
        await submit(http, {"type": "echo", "payload": "someone else"})
        frames = await reader.until(ends(job_id, "job.completed"))
        deleted = await http.delete(f"{API}/jobs/{job_id}")
        gone = await reader.until(ends(job_id, "job.deleted"))

    assert deleted.status_code == 204
    assert all(f.data()["id"] == job_id for f in frames + gone)
    assert "job.started" in names(frames)
    assert set(names(frames + gone)) <= API_EVENT_NAMES


async def test_a_malformed_job_id_filter_is_refused(http: httpx.AsyncClient) -> None:
    answer = await http.get(f"{API}/events", params={"job_id": "nope"})

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
