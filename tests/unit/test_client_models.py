"""The SDK's pure parts: API.md-shaped answers decoded into models, error answers mapped to
error classes, SSE lines framed into events, and requests built as the API expects."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import msgspec
import pytest

from leveret.client import DEFAULT_URL, Client, SyncClient, calls
from leveret.client.errors import (
    AuthenticationError,
    ConflictError,
    GatewayConnectionError,
    GopherQueueError,
    JobNotFoundError,
    LeveretClientError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    UnexpectedResponseError,
    ValidationError,
    error_from_response,
    error_from_transport,
    retry_after_seconds,
)
from leveret.client.models import Event, Job, QueueInfo, SSEEvent
from leveret.jobs import Backoff, JobState, Priority

JOB_ID = "01938c2e-7b1a-7cc0-8a4e-3f1d2c3b4a59"

FULL_JOB: dict[str, Any] = {
    "id": JOB_ID,
    "type": "email",
    "queue": "default",
    "state": "running",
    "priority": 2,
    "attempt": 1,
    "max_attempts": 3,
    "progress": 42.5,
    "progress_message": "step 4/10",
    "tags": {"tenant": "a"},
    "idempotency_key": "order-17",
    "depends_on": ["01938c2e-0000-7000-8000-000000000001"],
    "created_at": "2026-11-22T10:00:00.123456Z",
    "updated_at": "2026-11-22T10:00:01.000001Z",
    "scheduled_at": "2026-11-22T10:00:00.500000Z",
    "started_at": "2026-11-22T10:00:00.900000Z",
    "last_error": "smtp timeout",
    "timeout": 30_000_000_000,
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "a_key_from_a_newer_gateway": {"ignored": True},
}

MINIMAL_JOB: dict[str, Any] = {
    "id": JOB_ID,
    "type": "email",
    "queue": "default",
    "state": "scheduled",
    "priority": 0,
    "attempt": 0,
    "created_at": "2026-11-22T10:00:00.123456Z",
    "updated_at": "2026-11-22T10:00:00.123456Z",
}

RESULT: dict[str, Any] = {
    "job_id": JOB_ID,
    "success": True,
    "output": {"sent": 3},
    "duration": 1_500_000_000,
    "completed_at": "2026-11-22T10:00:02.000000Z",
}


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def failure(
    status: int, code: str, message: str = "nope", details: Any = None, **headers: str
) -> httpx.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return httpx.Response(status, json={"error": error}, headers=headers)


# --- decoding ----------------------------------------------------------------------------


def test_full_job_decodes_with_aware_timestamps_and_typed_enums() -> None:
    job = calls.get(JOB_ID).read(ok(FULL_JOB))

    assert job.state is JobState.RUNNING
    assert job.priority is Priority.NORMAL
    assert job.created_at == datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
    assert job.started_at is not None
    assert job.started_at.tzinfo is not None
    assert job.timeout == 30_000_000_000
    assert job.timeout_seconds == 30.0
    assert job.tags == {"tenant": "a"}
    assert job.depends_on == ["01938c2e-0000-7000-8000-000000000001"]
    assert not job.is_terminal


def test_omitted_optional_keys_take_empty_values() -> None:
    job = msgspec.json.decode(msgspec.json.encode(MINIMAL_JOB), type=Job)

    assert (job.progress, job.progress_message, job.tags, job.depends_on) == (0.0, "", {}, [])
    assert job.max_attempts is None
    assert job.timeout_seconds is None
    assert job.completed_at is None
    assert job.last_error is None
    assert job.payload is None
    assert job.result is None


def test_job_page_reads_like_a_list_of_jobs() -> None:
    body = {"jobs": [FULL_JOB, MINIMAL_JOB], "count": 2, "next_cursor": None}
    page = calls.list_jobs(
        state=None, type=None, queue=None, tags=None, limit=2, cursor=None, include=()
    ).read(ok(body))

    assert len(page) == 2
    assert page.count == 2
    assert page.next_cursor is None
    assert [job.state for job in page] == [JobState.RUNNING, JobState.SCHEDULED]
    assert page[1].priority is Priority.CRITICAL


def test_batch_result_carries_jobs_and_error_objects() -> None:
    body = {
        "total": 2,
        "accepted": 1,
        "rejected": 1,
        "results": [
            {"index": 0, "success": True, "job": MINIMAL_JOB},
            {
                "index": 1,
                "success": False,
                "error": {
                    "code": "validation_error",
                    "message": "priority must be 0..4",
                    "details": {"field": "priority"},
                },
            },
        ],
    }
    batch = calls.submit_batch([{"type": "a"}, {"type": "b", "priority": 9}], False).read(
        ok(body, 201)
    )

    assert (batch.total, batch.accepted, batch.rejected) == (2, 1, 1)
    assert [job.id for job in batch.jobs] == [JOB_ID]
    rejected = batch.results[1]
    assert rejected.job is None
    assert rejected.error is not None
    assert rejected.error.code == "validation_error"
    assert rejected.error.details == {"field": "priority"}


def test_wait_result_with_result_and_timed_out() -> None:
    done = calls.wait(JOB_ID, 30).read(
        ok(
            {
                "id": JOB_ID,
                "state": "completed",
                "completed": True,
                "success": True,
                "result": RESULT,
            }
        )
    )
    assert done.completed
    assert done.success
    assert not done.timed_out
    assert done.result is not None
    assert done.result.output == {"sent": 3}

    late = calls.wait(JOB_ID, 1).read(
        ok({"id": JOB_ID, "state": "running", "completed": False, "timed_out": True})
    )
    assert late.timed_out
    assert not late.success
    assert late.result is None
    assert late.state is JobState.RUNNING


def test_job_result_duration_is_nanoseconds_on_the_wire() -> None:
    result = calls.get_result(JOB_ID).read(ok(RESULT | {"error_category": None}))

    assert result.duration_ns == 1_500_000_000
    assert result.duration_seconds == 1.5
    assert result.completed_at == datetime(2026, 11, 22, 10, 0, 2, tzinfo=UTC)
    assert result.error is None


def test_stats_fold_the_worker_summary_into_queue_stats() -> None:
    body = {
        "queue": {
            "pending": 1,
            "scheduled": 2,
            "running": 3,
            "delayed": 4,
            "retrying": 5,
            "completed": 6,
            "failed": 7,
            "dead_letter": 8,
            "cancelled": 9,
            "total_jobs": 45,
            "timestamp": "2026-11-22T10:00:00.000000Z",
        },
        "workers": {"consumers": 4, "queues": {"default": 3, "email": 1}},
    }
    stats = calls.stats().read(ok(body))

    assert (stats.pending, stats.retrying, stats.dead_letter, stats.total_jobs) == (1, 5, 8, 45)
    assert stats.workers.consumers == 4
    assert stats.workers.queues == {"default": 3, "email": 1}
    assert stats.timestamp == datetime(2026, 11, 22, 10, tzinfo=UTC)


def test_queues_dlq_and_counts() -> None:
    queues = calls.queues().read(
        ok(
            {
                "queues": [
                    {
                        "name": "default",
                        "ready": 5,
                        "consumers": 2,
                        "dlq": 1,
                        "counts": {"scheduled": 5, "failed": 1},
                    },
                    {"name": "cold", "ready": None, "consumers": None, "dlq": None, "counts": {}},
                ]
            }
        )
    )
    assert queues[0] == QueueInfo(
        name="default", ready=5, consumers=2, dlq=1, counts={"scheduled": 5, "failed": 1}
    )
    assert queues[1].ready is None

    dead = FULL_JOB | {"state": "dead_letter", "reason": "attempts exhausted"}
    page = calls.dlq(queue=None, type=None, limit=10, cursor=None).read(
        ok({"jobs": [dead], "count": 1, "next_cursor": "c2"})
    )
    assert page[0].reason == "attempts exhausted"
    assert page[0].is_terminal
    assert page.next_cursor == "c2"

    assert calls.dlq_retry(queue="default", type=None, ids=None).read(ok({"retried": 3})) == 3
    assert calls.dlq_purge(None).read(ok({"purged": 7})) == 7


def test_delete_answers_nothing() -> None:
    assert calls.delete(JOB_ID).read(httpx.Response(204)) is None


def test_a_body_of_the_wrong_shape_is_an_unexpected_response() -> None:
    with pytest.raises(UnexpectedResponseError) as caught:
        calls.get(JOB_ID).read(httpx.Response(200, text="<html>proxy</html>"))
    assert caught.value.status == 200


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "invalid_request", ValidationError),
        (400, "validation_error", ValidationError),
        (422, "validation_error", ValidationError),
        (401, "unauthorized", AuthenticationError),
        (403, "forbidden", PermissionDeniedError),
        (404, "not_found", JobNotFoundError),
        (409, "conflict", ConflictError),
        (413, "payload_too_large", PayloadTooLargeError),
        (503, "unavailable", ServiceUnavailableError),
        (500, "internal_error", ServerError),
        (405, "method_not_allowed", LeveretClientError),
    ],
)
def test_error_codes_map_to_classes(status: int, code: str, kind: type[LeveretClientError]) -> None:
    error = error_from_response(failure(status, code, "said the gateway", **{"X-Request-ID": "r1"}))

    assert type(error) is kind
    assert isinstance(error, GopherQueueError)
    assert (error.status, error.code, error.message, error.request_id) == (
        status,
        code,
        "said the gateway",
        "r1",
    )
    assert code in str(error)
    assert "r1" in str(error)


def test_validation_error_names_its_field() -> None:
    error = error_from_response(failure(422, "validation_error", details={"field": "priority"}))

    assert isinstance(error, ValidationError)
    assert error.field == "priority"
    assert error.details == {"field": "priority"}
    assert isinstance(error_from_response(failure(400, "validation_error")), ValidationError)
    unnamed = error_from_response(failure(400, "invalid_request", details=[1]))
    assert isinstance(unnamed, ValidationError)
    assert unnamed.field is None


def test_not_found_carries_the_job_id_of_the_call() -> None:
    with pytest.raises(JobNotFoundError) as caught:
        calls.get_result(JOB_ID).read(failure(404, "not_found", "job has no result yet"))
    assert caught.value.job_id == JOB_ID
    assert caught.value.message == "job has no result yet"


def test_unavailable_reads_retry_after() -> None:
    error = error_from_response(failure(503, "unavailable", **{"Retry-After": "5"}))

    assert isinstance(error, ServiceUnavailableError)
    assert isinstance(error, ServerError)
    assert error.retry_after == 5.0


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    seconds = retry_after_seconds(later)
    assert seconds is not None
    assert 100 < seconds <= 120
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_an_answer_without_our_error_body_maps_by_status() -> None:
    proxy = error_from_response(httpx.Response(502, text="Bad Gateway"))
    assert type(proxy) is ServerError
    assert proxy.code == "internal_error"
    assert proxy.message == "Bad Gateway"

    teapot = error_from_response(httpx.Response(401))
    assert type(teapot) is AuthenticationError
    assert teapot.code == "unauthorized"


def test_transport_failures_map_to_connection_and_timeout_errors() -> None:
    refused = error_from_transport(httpx.ConnectError("refused"), DEFAULT_URL)
    assert isinstance(refused, GatewayConnectionError)
    assert isinstance(refused, ConnectionError)
    assert DEFAULT_URL in refused.message
    assert refused.status is None

    assert isinstance(error_from_transport(httpx.ConnectTimeout("x"), "u"), GatewayConnectionError)
    slow = error_from_transport(httpx.ReadTimeout("x"), "u")
    assert isinstance(slow, RequestTimeoutError)
    assert isinstance(slow, TimeoutError)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_sync_client_on_an_unreachable_gateway() -> None:
    with (
        SyncClient(f"http://127.0.0.1:{_closed_port()}", timeout=2) as client,
        pytest.raises(GatewayConnectionError),
    ):
        client.get(JOB_ID)


async def test_async_client_on_an_unreachable_gateway() -> None:
    async with Client(f"http://127.0.0.1:{_closed_port()}", timeout=2) as client:
        with pytest.raises(GatewayConnectionError):
            await client.stats()
        with pytest.raises(GatewayConnectionError):
            async for _ in client.events():
                pass


# --- server-sent events ------------------------------------------------------------------


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


# --- requests ----------------------------------------------------------------------------


@pytest.fixture
def http() -> httpx.Client:
    return httpx.Client(base_url="http://gateway:8080/prefix", timeout=10.0)


@pytest.mark.parametrize(
    ("timeout", "seconds"), [("30s", 30), (30, 30), (timedelta(minutes=2), 120)]
)
def test_wait_reads_longer_than_it_waits(
    http: httpx.Client, timeout: calls.Duration, seconds: float
) -> None:
    request = calls.wait(JOB_ID, timeout).build(http)

    assert request.method == "POST"
    assert request.url.path == f"/prefix/api/v1/jobs/{JOB_ID}/wait"
    assert request.extensions["timeout"]["read"] > seconds
    assert request.extensions["timeout"]["connect"] == 10.0
    body = msgspec.json.decode(request.content)
    assert body == {"timeout": timeout if not isinstance(timeout, timedelta) else seconds}


def test_submit_body_puts_durations_and_times_in_api_form(http: httpx.Client) -> None:
    spec = {
        "type": "email",
        "payload": {"to": "a@example.com"},
        "priority": Priority.HIGH,
        "delay": timedelta(milliseconds=1500),
        "timeout": "5m",
        "scheduled_at": None,
        "backoff": Backoff(initial=2.0),
        "tags": {"tenant": "a"},
    }
    request = calls.submit(spec).build(http)

    assert request.headers["content-type"] == "application/json"
    assert msgspec.json.decode(request.content) == {
        "type": "email",
        "payload": {"to": "a@example.com"},
        "priority": 1,
        "delay": 1.5,
        "timeout": "5m",
        "backoff": {"initial": 2.0},
        "tags": {"tenant": "a"},
    }
    plus_two = datetime(2026, 11, 22, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert calls.submission({"scheduled_at": plus_two}) == {
        "scheduled_at": "2026-11-22T10:00:00.123456Z"
    }


def test_list_repeats_tags_and_joins_include(http: httpx.Client) -> None:
    request = calls.list_jobs(
        state=JobState.FAILED,
        type="email",
        queue=None,
        tags={"tenant": "a", "region": "eu"},
        limit=50,
        cursor="abc",
        include=("payload", "result"),
    ).build(http)

    params = request.url.params
    assert params.get_list("tag") == ["tenant:a", "region:eu"]
    assert (params["state"], params["type"], params["limit"]) == ("failed", "email", "50")
    assert params["cursor"] == "abc"
    assert params["include"] == "payload,result"
    assert "queue" not in params
    assert not request.content


def test_events_for_every_job_send_no_job_filter(http: httpx.Client) -> None:
    assert "job_id" not in calls.events("*", None, None).build(http).url.params
    assert calls.events(JOB_ID, "email", None).build(http).url.params["job_id"] == JOB_ID


def test_client_headers_and_defaults() -> None:
    assert calls.client_headers("k3y")["X-API-Key"] == "k3y"
    assert "X-API-Key" not in calls.client_headers(None)
    with SyncClient(api_key="k3y") as client:
        assert client.url == DEFAULT_URL == "http://127.0.0.1:8080"
        assert "k3y" not in repr(client)
