"""docs/api.md, the HTTP reference, names every route the gateway serves, every field a
submit takes, every key of the job view and every error code, so that it cannot quietly fall
behind the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leveret.gateway.app import create_app
from leveret.gateway.requests import SubmitRequest
from leveret.gateway.views import DlqJobView, JobView, QueueCounts
from leveret.jobs.settings import Settings

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_PATH_PARAMETER = re.compile(r"\{[a-z_]+\}")
ERROR_CODES = (
    "invalid_request",
    "validation_error",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "payload_too_large",
    "internal_error",
    "unavailable",
)


@pytest.fixture(scope="module")
def reference() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def routes() -> list[str]:
    """`METHOD /path` for every operation of the OpenAPI document, `{job_id}` as `{id}`."""
    paths = create_app(Settings()).openapi_schema.to_schema()["paths"]
    return sorted(
        f"{method.upper()} {_PATH_PARAMETER.sub('{id}', path)}"
        for path, operations in paths.items()
        for method in operations
    )


def test_every_route_is_described(reference: str) -> None:
    served = routes()
    assert "POST /api/v1/jobs" in served
    missing = [route for route in served if f"`{route}" not in reference]
    assert not missing


@pytest.mark.parametrize("struct", [SubmitRequest, JobView, DlqJobView, QueueCounts])
def test_every_field_is_named(reference: str, struct: type) -> None:
    missing = [
        name
        for name in struct.__struct_fields__
        if f"`{name}`" not in reference and f'"{name}"' not in reference
    ]
    assert not missing, struct.__name__


def test_every_error_code_is_listed(reference: str) -> None:
    assert all(f"`{code}`" in reference for code in ERROR_CODES)


def test_it_points_at_nothing_a_user_does_not_have(reference: str) -> None:
    assert "shared/" not in reference
    assert "API.md" not in reference
