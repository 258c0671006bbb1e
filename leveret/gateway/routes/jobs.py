"""`/api/v1/jobs`: submit (one or a batch), read, list, cancel, retry, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Response, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, JSONBody, QueryParameter

from leveret.gateway.auth import ADMIN, OPERATOR, SECURITY, VIEWER
from leveret.gateway.errors import (
    ERROR_RESPONSES,
    error_of,
    field_in,
    payload_too_large,
    validation_error,
)
from leveret.gateway.requests import (
    BatchRequest,
    CancelRequest,
    RetryRequest,
    SubmitRequest,
    cursor_of,
)
from leveret.gateway.resources import Gateway
from leveret.gateway.routes.job_path import JobIdPath, job_id_of, job_or_404
from leveret.gateway.views import (
    BatchItem,
    BatchResponse,
    JobList,
    JobView,
    job_view,
)
from leveret.jobs.errors import InvalidJob, PayloadTooLarge
from leveret.jobs.rules import check_payload
from leveret.jobs.settings import Settings
from leveret.jobs.states import JobState
from leveret.jobs.store import JobQuery
from leveret.jobs.submission import Submission

_EXISTING = ResponseSpec(JobView, description="the job made earlier with this idempotency_key")


@post(
    "/",
    responses={**ERROR_RESPONSES, 200: _EXISTING},
    guards=OPERATOR,
    status_code=201,
    summary="Submit a job",
)
async def submit(
    data: JSONBody[SubmitRequest], gateway: NamedDependency[Gateway]
) -> Response[JobView]:
    """Store the job and publish it; answers once the broker confirmed the publish (201), or
    with the existing job when its idempotency key was used before (200). If RabbitMQ does
    not take it, the answer is 503 with Retry-After and no live job is kept (it is recorded
    cancelled, its idempotency key freed)."""
    job, created = await gateway.producer.submit_one(data.to_submission())
    return Response(job_view(job), status_code=201 if created else 200)


@post(
    "/batch",
    responses=ERROR_RESPONSES,
    guards=OPERATOR,
    status_code=201,
    summary="Submit several jobs",
)
async def submit_batch(
    data: JSONBody[BatchRequest], gateway: NamedDependency[Gateway]
) -> BatchResponse:
    """Submit up to `max_batch` jobs. `atomic`: all are stored or none (an invalid item is a
    400 naming its index); otherwise each item succeeds or fails on its own."""
    limit = gateway.settings.max_batch
    if len(data.jobs) > limit:
        raise validation_error("jobs", f"at most {limit} jobs per batch", limit=limit)
    parsed = [_parse_item(item, gateway.settings) for item in data.jobs]
    if data.atomic:
        for index, item in enumerate(parsed):
            if isinstance(item, PayloadTooLarge):
                field = f"jobs[{index}].{item.field}"
                raise payload_too_large(field, item.size, item.limit, index=index)
            if isinstance(item, InvalidJob):
                raise validation_error(f"jobs[{index}].{item.field}", item.message, index=index)
            if isinstance(item, Exception):
                raise item
        jobs = await gateway.producer.submit_many([p for p in parsed if isinstance(p, Submission)])
        results = [BatchItem(index=i, success=True, job=job_view(j)) for i, j in enumerate(jobs)]
    else:
        results = await asyncio.gather(
            *(_submit_item(gateway, i, item) for i, item in enumerate(parsed))
        )
    accepted = sum(1 for r in results if r.success)
    return BatchResponse(
        total=len(results), accepted=accepted, rejected=len(results) - accepted, results=results
    )


def _parse_item(item: dict[str, Any], settings: Settings) -> Submission | Exception:
    try:
        request = msgspec.convert(item, SubmitRequest, strict=False)
        # Checked here as well as by the producer, so that an atomic batch names the item.
        check_payload(request.payload, settings.max_payload)
        return request.to_submission()
    except msgspec.ValidationError as exc:
        message = str(exc)
        return InvalidJob(field_in(message) or "body", message.split(" - at `")[0])
    except Exception as exc:  # InvalidJob (PayloadTooLarge among them): reported per item
        return exc


async def _submit_item(gateway: Gateway, index: int, item: Submission | Exception) -> BatchItem:
    try:
        if isinstance(item, Exception):
            raise item
        job, _ = await gateway.producer.submit_one(item)
    except Exception as exc:
        error = error_of(exc)
        return BatchItem(
            index=index,
            success=False,
            error=error.message,
            error_code=error.code,
            error_details=error.details,
        )
    return BatchItem(index=index, success=True, job=job_view(job))


@get("/", responses=ERROR_RESPONSES, guards=VIEWER, summary="List jobs")
async def list_jobs(
    gateway: NamedDependency[Gateway],
    job_state: Annotated[str | None, QueryParameter(name="state")] = None,
    job_type: Annotated[str | None, QueryParameter(name="type")] = None,
    queue: FromQuery[str | None] = None,
    tag: FromQuery[list[str] | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    cursor: FromQuery[str | None] = None,
    include: FromQuery[str | None] = None,
) -> JobList:
    """Jobs newest first, filtered by state (comma-separated), type, queue and tags
    (`tag=key:value`, repeatable); `include=payload,result` adds those."""
    query = JobQuery(
        states=_states(job_state),
        type=job_type,
        queue=queue,
        tags=_tags(tag),
        limit=limit,
        cursor=cursor_of(cursor),
    )
    page = await gateway.store.list(query)
    wanted = set((include or "").split(","))
    views = [job_view(j, payload="payload" in wanted, result="result" in wanted) for j in page.jobs]
    return JobList(jobs=views, count=len(views), next_cursor=page.next_cursor)


def _states(raw: str | None) -> frozenset[JobState] | None:
    if not raw:
        return None
    try:
        return frozenset(JobState(s.strip()) for s in raw.split(",") if s.strip())
    except ValueError:
        raise validation_error(
            "state", f"unknown state in {raw[:100]!r}; use {', '.join(JobState)}"
        ) from None


def _tags(raw: list[str] | None) -> dict[str, str] | None:
    if not raw:
        return None
    tags: dict[str, str] = {}
    for pair in raw:
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise validation_error("tag", f"{pair[:100]!r} is not key:value")
        tags[key] = value
    return tags


@get("/{job_id:str}", responses=ERROR_RESPONSES, guards=VIEWER, summary="Get a job")
async def get_job(job_id: JobIdPath, gateway: NamedDependency[Gateway]) -> JobView:
    """The job, with its payload and, once it completed, its result."""
    return job_view(await job_or_404(gateway, job_id), payload=True, result=True)


@delete(
    "/{job_id:str}",
    responses=ERROR_RESPONSES,
    guards=ADMIN,
    status_code=204,
    summary="Delete a job",
)
async def delete_job(job_id: JobIdPath, gateway: NamedDependency[Gateway]) -> None:
    """Remove the job; a job that has not finished is cancelled first."""
    await gateway.actions.delete(job_id_of(job_id))


@post(
    "/{job_id:str}/cancel",
    responses=ERROR_RESPONSES,
    guards=OPERATOR,
    status_code=200,
    summary="Cancel a job",
)
async def cancel_job(
    job_id: JobIdPath,
    gateway: NamedDependency[Gateway],
    data: JSONBody[CancelRequest | None] = None,
) -> JobView:
    """Cancel a job that has not finished; a running job's handler is stopped on its
    worker. 409 when it already finished."""
    reason = data.reason if data is not None else None
    return job_view(await gateway.actions.cancel(job_id_of(job_id), reason))


@post(
    "/{job_id:str}/retry",
    responses=ERROR_RESPONSES,
    guards=OPERATOR,
    status_code=200,
    summary="Retry a job",
)
async def retry_job(
    job_id: JobIdPath, gateway: NamedDependency[Gateway], data: JSONBody[RetryRequest | None] = None
) -> JobView:
    """Send a failed, dead-lettered or cancelled job back to its queue; 409 otherwise."""
    reset = data.reset_attempts if data is not None else False
    return job_view(await gateway.actions.retry(job_id_of(job_id), reset_attempts=reset))


jobs_router = Router(
    path="/api/v1/jobs",
    security=SECURITY,
    route_handlers=[
        submit,
        submit_batch,
        list_jobs,
        get_job,
        delete_job,
        cancel_job,
        retry_job,
    ],
    tags=["jobs"],
)
