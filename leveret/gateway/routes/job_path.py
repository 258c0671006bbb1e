"""The job a path names: its id checked and canonical, and the job read or a 404."""

from __future__ import annotations

from typing import Annotated

from litestar.params import PathParameter

from leveret.gateway.errors import invalid_request
from leveret.gateway.resources import Gateway
from leveret.jobs.errors import JobNotFound
from leveret.jobs.model import Job
from leveret.jobs.rules import is_job_id

# Documented as a UUID; checked by job_id_of, so that a malformed one is invalid_request.
JobIdPath = Annotated[str, PathParameter(format="uuid", description="A job id (a UUID).")]


def job_id_of(raw: str) -> str:
    """A path's job id in canonical (lower-case) form; 400 when it is not a UUID."""
    if not is_job_id(raw):
        raise invalid_request(f"job id {raw[:64]!r} is not a UUID")
    return raw.lower()


async def job_or_404(gateway: Gateway, raw_id: str) -> Job:
    """The job a path names; 400 for a malformed id, 404 for an unknown one."""
    job_id = job_id_of(raw_id)
    job = await gateway.store.get(job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job
