"""The SDK's requests: paths, bodies, query strings and timeouts as the API expects them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import msgspec
import pytest

from leveret.client import DEFAULT_URL, SyncClient, calls
from leveret.jobs import Backoff, JobState, Priority
from tests.unit.gateway_answers import JOB_ID


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
