"""The SDK's errors: error answers mapped to error classes by their code, and transport
failures to connection and timeout errors."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
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
    ValidationError,
    error_from_response,
    error_from_transport,
    retry_after_seconds,
)
from tests.unit.gateway_answers import JOB_ID, failure


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
