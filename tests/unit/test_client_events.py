"""The SDK's server-sent events: lines of a `text/event-stream` framed into events by the
WHATWG rules."""

from __future__ import annotations

import httpx
import msgspec

from leveret.client import calls
from leveret.client.models import Event, SSEEvent
from tests.unit.gateway_answers import JOB_ID, MINIMAL_JOB


def frames(text: str) -> list[Event]:
    decoder = calls.EventStreamDecoder()
    events = [decoder.feed(line) for line in httpx.Response(200, text=text).iter_lines()]
    return [event for event in events if event is not None]


def test_sse_frames_as_the_gateway_sends_them() -> None:
    job = msgspec.json.encode(MINIMAL_JOB).decode()
    stream = (
        'event: connected\ndata: {"status":"connected"}\n\n'
        ": keepalive\n\n"
        f"event: job.created\ndata: {job}\nid: 17\n\n"
        f"event: job.started\r\ndata: {job}\r\nid: 18\r\n\r\n"
    )
    connected, created, started = frames(stream)

    assert SSEEvent is Event
    assert connected.event == "connected"
    assert connected.data == {"status": "connected"}
    assert connected.job is None
    assert connected.id is None
    assert created.event == "job.created"
    assert created.id == "17"
    assert created.job is not None
    assert created.job.id == JOB_ID
    assert created.data["id"] == JOB_ID
    assert created.raw == job
    assert started.id == "18"
    assert started.job is not None


def test_sse_multi_line_data_and_odd_frames() -> None:
    stream = (
        'event: job.progress\ndata: {"id":\ndata: 1}\nid: 5\n\n'  # JSON over two data lines
        "data:plain text\n\n"  # no event name, no space after the colon
        "event: lonely\n\n"  # no data: nothing is dispatched
        'event: job.deleted\ndata: {"id": "gone"}\n\n'  # not a full Job; id carries over
    )
    progress, message, deleted = frames(stream)

    assert progress.raw == '{"id":\n1}'
    assert progress.data == {"id": 1}
    assert progress.job is None  # not a Job; the event is still delivered
    assert (message.event, message.data) == ("message", "plain text")
    assert message.id == "5"
    assert deleted.event == "job.deleted"
    assert deleted.data == {"id": "gone"}
