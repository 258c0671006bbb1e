"""Answers as the gateway gives them (job views, results, error bodies), for the SDK's unit
tests to decode without a gateway."""

from __future__ import annotations

from typing import Any

import httpx

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
