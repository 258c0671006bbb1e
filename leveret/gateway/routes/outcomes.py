"""How a job ended: waiting for it (event-driven long poll) and reading its result."""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from leveret.gateway.auth import SECURITY, VIEWER
from leveret.gateway.errors import ERROR_RESPONSES, ApiError
from leveret.gateway.requests import MAX_WAIT, WaitRequest, seconds
from leveret.gateway.resources import Gateway
from leveret.gateway.routes.job_path import JobIdPath, job_id_of, job_or_404
from leveret.gateway.views import ResultResponse, WaitResponse, result_view
from leveret.jobs.states import TERMINAL_STATES, JobState


@post(
    "/{job_id:str}/wait",
    responses=ERROR_RESPONSES,
    guards=VIEWER,
    status_code=200,
    summary="Wait for a job",
)
async def wait_post(
    job_id: JobIdPath, gateway: NamedDependency[Gateway], data: JSONBody[WaitRequest | None] = None
) -> WaitResponse:
    """Answer the moment the job finishes, or when `timeout` (default 30s, at most 5m) runs
    out, with `timed_out: true`."""
    return await _wait(gateway, job_id, data.timeout if data is not None else None)


@get("/{job_id:str}/wait", responses=ERROR_RESPONSES, guards=VIEWER, summary="Wait for a job (GET)")
async def wait_get(
    job_id: JobIdPath,
    gateway: NamedDependency[Gateway],
    within: Annotated[str | None, QueryParameter(name="timeout")] = None,
) -> WaitResponse:
    """The same wait, with `?timeout=30s`."""
    return await _wait(gateway, job_id, within)


async def _wait(gateway: Gateway, raw_id: str, within: str | float | None) -> WaitResponse:
    limit = seconds("timeout", within, maximum=MAX_WAIT)  # InvalidJob: a validation_error
    job_id = job_id_of(raw_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (30.0 if limit is None else limit)
    async with gateway.hub.finish_of(job_id) as woken:
        job = await job_or_404(gateway, job_id)
        while job.state not in TERMINAL_STATES:
            try:
                async with asyncio.timeout_at(deadline):
                    await woken.wait()
            except TimeoutError:
                job = await job_or_404(gateway, job_id)
                if job.state in TERMINAL_STATES:
                    break
                return WaitResponse(id=job.id, state=job.state, completed=False, timed_out=True)
            woken.clear()
            job = await job_or_404(gateway, job_id)
    success = job.state is JobState.COMPLETED
    return WaitResponse(
        id=job.id, state=job.state, completed=True, success=success, result=result_view(job)
    )


@get("/{job_id:str}/result", responses=ERROR_RESPONSES, guards=VIEWER, summary="Get a job's result")
async def get_result(job_id: JobIdPath, gateway: NamedDependency[Gateway]) -> ResultResponse:
    """The outcome of a finished job: its output, or the error it ended with. 404 while it
    has not finished."""
    job = await job_or_404(gateway, job_id)
    if job.state not in TERMINAL_STATES:
        raise ApiError(404, "not_found", f"job {job.id} has no result yet: it is {job.state}")
    return result_view(job)


outcomes_router = Router(
    path="/api/v1/jobs",
    security=SECURITY,
    route_handlers=[wait_post, wait_get, get_result],
    tags=["jobs"],
)
