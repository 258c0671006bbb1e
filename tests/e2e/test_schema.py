"""Schemathesis against a running `leveret dev`: generated requests to every operation of the
gateway's OpenAPI document, and each answer checked against that document.

The document is built from `create_app` at import: schemathesis' pytest integration makes one
test per operation at collection time, before any fixture has started a server, and its lazy
`from_fixture` loader fails under pytest 9.2 ("'Function' object has no attribute '_nodeid'",
schemathesis 4.32.5). `test_served_schema_is_the_one_tested` pins that it is the document the
server serves at /schema/openapi.json.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case, HookContext

from leveret.gateway.app import create_app
from leveret.gateway.requests import MAX_WAIT, seconds
from leveret.jobs.errors import InvalidJob
from leveret.jobs.settings import Settings
from tests.conditions import eventually
from tests.e2e.conftest import DevServer

MAX_EXAMPLES = 15  # per operation and generation phase: finds shape bugs, and stays fast
REQUEST_TIMEOUT = 10.0  # seconds any one request may take
WAIT_BOUND = 0.2  # seconds a generated wait may block (the API allows five minutes)
EVENTS = "/api/v1/events"  # an endless SSE stream: there is no response to validate

OPERATION_TIMEOUT = 60  # seconds for one operation's run: generation, calls, shrinking
BUDGET = 150.0  # seconds for the whole module (about 50 on two cores)

pytestmark = pytest.mark.timeout(OPERATION_TIMEOUT)


def _document() -> dict[str, Any]:
    """The OpenAPI document of the app `leveret dev` serves."""
    return create_app(Settings()).openapi_schema.to_schema()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": MAX_EXAMPLES},
            # Stateful runs need links the document does not have, and ignore max-examples.
            "phases": {"stateful": {"enabled": False}},
        }
    ),
).exclude(path=EVENTS)


def _bounded_wait(value: Any) -> Any:
    """`value` as a wait timeout of at most WAIT_BOUND; a value the API refuses stays, for
    the server to refuse."""
    if value is not None and not isinstance(value, str | int | float):
        return value  # a list, an object: not a duration
    try:
        limit = seconds("timeout", value, maximum=MAX_WAIT)
    except InvalidJob:
        return value
    return f"{int(WAIT_BOUND * 1000)}ms" if limit is None or limit > WAIT_BOUND else value


def _is_wait(context: HookContext) -> bool:
    return context.operation is not None and context.operation.path.endswith("/wait")


@schema.hook
def map_query(context: HookContext, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """GET .../wait: no timeout means 30 s; bound it."""
    if not _is_wait(context):
        return query
    query = dict(query or {})
    query["timeout"] = _bounded_wait(query.get("timeout"))
    return query


@schema.hook
def map_body(context: HookContext, body: Any) -> Any:
    """POST .../wait: no body or no timeout means 30 s; bound it."""
    if not _is_wait(context):
        return body
    if body is None:
        return {"timeout": _bounded_wait(None)}
    if isinstance(body, dict):
        return {**body, "timeout": _bounded_wait(body.get("timeout"))}
    return body


@pytest.fixture(scope="module")
def deadline() -> float:
    """When the module's time is up."""
    return time.monotonic() + BUDGET


@pytest.fixture(autouse=True)
def within_budget(deadline: float) -> None:
    """Fail what is left once the module ran over BUDGET: a slow gateway is a finding, and
    CI must not spend minutes on it."""
    if time.monotonic() > deadline:
        pytest.fail(f"the schema tests ran over their {BUDGET:g}s budget", pytrace=False)


@pytest.fixture
async def job_ids(dev: DevServer, request: pytest.FixtureRequest) -> AsyncIterator[list[str]]:
    """For an operation on one job: a job in each kind of state, fresh for each test (the
    DELETE and cancel tests use them up): completed, failed (in the DLQ), running, delayed."""
    if "{job_id}" not in request.node.name:
        yield []
        return
    async with httpx.AsyncClient(base_url=dev.url, timeout=REQUEST_TIMEOUT) as client:

        async def submit(body: dict[str, Any]) -> str:
            response = await client.post("/api/v1/jobs", json=body)
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        async def reaches(job_id: str, wanted: str) -> None:
            async def state() -> str:
                return str((await client.get(f"/api/v1/jobs/{job_id}")).json()["state"])

            await eventually(state, lambda now: now == wanted, what=f"{job_id} {wanted}")

        completed = await submit({"type": "echo", "payload": {"n": 1}, "priority": 0})
        failed = await submit({"type": "reject", "priority": 0})
        running = await submit({"type": "sleep", "payload": {"seconds": 600}, "priority": 0})
        delayed = await submit({"type": "echo", "delay": "1h", "priority": 0})
        await reaches(completed, "completed")
        await reaches(failed, "failed")
        await reaches(running, "running")
        yield [completed, failed, running, delayed]
        # A running handler would hold up the server's graceful stop. The test may have
        # cancelled or deleted it already (409, 404).
        await client.post(f"/api/v1/jobs/{running}/cancel", json={"reason": "test over"})


def test_served_schema_is_the_one_tested(dev: DevServer) -> None:
    response = httpx.get(f"{dev.url}/schema/openapi.json", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200
    assert response.json() == DOCUMENT


def _call(case: Case[Any], pick: int, dev: DevServer, job_ids: list[str], check: str) -> None:
    # A generated job id is almost never a UUID, so would only meet the 400 path: `pick`
    # below len(job_ids) names a real job instead.
    if "job_id" in (case.path_parameters or {}) and pick < len(job_ids):
        case.path_parameters = {**case.path_parameters, "job_id": job_ids[pick]}
    case.call_and_validate(
        base_url=dev.url, timeout=REQUEST_TIMEOUT, checks=[getattr(schemathesis.checks, check)]
    )


PICK = st.integers(min_value=0, max_value=5)
# `job_ids` is made once per operation, not per example, on purpose: examples share the jobs.
# Under CI the examples are the same on every run, so that a landing never hangs on a rare
# draw; elsewhere each run explores new ones (and hypothesis remembers what failed).
PER_OPERATION = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=bool(os.environ.get("CI")),
)


@schema.parametrize()
@schema.given(pick=PICK)
@PER_OPERATION
def test_no_server_error(case: Case[Any], pick: int, dev: DevServer, job_ids: list[str]) -> None:
    """No request, however malformed, gets a 5xx."""
    _call(case, pick, dev, job_ids, "not_a_server_error")


@schema.parametrize()
@schema.given(pick=PICK)
@PER_OPERATION
def test_response_matches_schema(
    case: Case[Any], pick: int, dev: DevServer, job_ids: list[str]
) -> None:
    """Every answer's body is what the document says for its status."""
    _call(case, pick, dev, job_ids, "response_schema_conformance")


@schema.parametrize()
@schema.given(pick=PICK)
@PER_OPERATION
def test_status_documented(case: Case[Any], pick: int, dev: DevServer, job_ids: list[str]) -> None:
    """Every answer's status is one the document lists for the operation."""
    _call(case, pick, dev, job_ids, "status_code_conformance")
