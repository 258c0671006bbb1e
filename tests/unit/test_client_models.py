"""The SDK's models: the gateway's answers decoded into typed structs."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import msgspec
import pytest

from leveret.client import calls
from leveret.client.errors import UnexpectedResponseError
from leveret.client.models import JobInfo, QueueInfo
from leveret.jobs import JobState, Priority
from leveret.jobs.rules import DEFAULT_MAX_ATTEMPTS
from tests.unit.gateway_answers import FULL_JOB, JOB_ID, MINIMAL_JOB, RESULT, ok


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
    job = msgspec.json.decode(msgspec.json.encode(MINIMAL_JOB), type=JobInfo)

    assert (job.progress, job.progress_message, job.tags, job.depends_on) == (0.0, "", {}, [])
    assert job.max_attempts == DEFAULT_MAX_ATTEMPTS  # an older gateway left it out
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


def test_batch_result_carries_jobs_and_string_errors() -> None:
    body = {
        "total": 2,
        "accepted": 1,
        "rejected": 1,
        "results": [
            {"index": 0, "success": True, "job": MINIMAL_JOB},
            {
                "index": 1,
                "success": False,
                "error": "priority: Expected `int` <= 4",
                "error_code": "validation_error",
                "error_details": {"field": "priority"},
            },
        ],
    }
    batch = calls.submit_batch([{"type": "a"}, {"type": "b", "priority": 9}], False).read(
        ok(body, 201)
    )

    assert (batch.total, batch.accepted, batch.rejected) == (2, 1, 1)
    assert [job.id for job in batch.jobs] == [JOB_ID]
    accepted, rejected = batch.results
    assert (accepted.error, accepted.error_code, accepted.field) == (None, None, None)
    assert rejected.job is None
    assert rejected.error == "priority: Expected `int` <= 4"
    assert rejected.error_code == "validation_error"
    assert rejected.field == "priority"


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
            "storage_bytes": 4096,
            "timestamp": "2026-11-22T10:00:00.000000Z",
        },
        "workers": {"consumers": 4, "queues": {"default": 3, "email": 1}},
    }
    stats = calls.stats().read(ok(body))

    assert (stats.pending, stats.retrying, stats.dead_letter, stats.total_jobs) == (1, 5, 8, 45)
    assert stats.storage_bytes == 4096
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
