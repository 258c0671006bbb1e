"""`/api/v1/dlq`: the failed and dead-lettered jobs, and replaying or purging them.

The store is the DLQ's record (it has every job's reason and history); the broker's
`<ns>.dlq.<queue>` queues hold a copy of each dead message for AMQP-side tooling, and are
emptied by a purge.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter

from leveret.broker import purge_queue
from leveret.gateway.auth import OPERATOR, SECURITY
from leveret.gateway.errors import ERROR_RESPONSES, validation_error
from leveret.gateway.requests import DlqRetryRequest, cursor_of
from leveret.gateway.resources import Gateway
from leveret.gateway.views import DlqList, Purged, Retried, dlq_view
from leveret.jobs.errors import JobNotFound, WrongState
from leveret.jobs.events import EventName
from leveret.jobs.model import Job
from leveret.jobs.rules import is_valid_queue
from leveret.jobs.states import DLQ_STATES
from leveret.jobs.store import JobQuery

_SWEEP_PAGE = 1000


@get("/", responses=ERROR_RESPONSES, guards=OPERATOR, summary="List the DLQ")
async def list_dlq(
    gateway: NamedDependency[Gateway],
    queue: FromQuery[str | None] = None,
    job_type: Annotated[str | None, QueryParameter(name="type")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    cursor: FromQuery[str | None] = None,
) -> DlqList:
    """Failed and dead-lettered jobs, newest first, each with its `reason`."""
    page = await gateway.store.list(
        JobQuery(
            states=DLQ_STATES,
            queue=queue,
            type=job_type,
            limit=limit,
            cursor=cursor_of(cursor),
        )
    )
    views = [dlq_view(job) for job in page.jobs]
    return DlqList(jobs=views, count=len(views), next_cursor=page.next_cursor)


@post(
    "/retry", responses=ERROR_RESPONSES, guards=OPERATOR, status_code=200, summary="Replay DLQ jobs"
)
async def retry_dlq(
    gateway: NamedDependency[Gateway], data: JSONBody[DlqRetryRequest | None] = None
) -> Retried:
    """Send DLQ jobs back to their queues: those in `ids`, or every one of `queue` and/or
    `type`. Answers how many went back (jobs no longer in the DLQ are skipped)."""
    data = data or DlqRetryRequest()
    if data.ids is not None:
        ids = [i.lower() for i in data.ids]
    else:
        ids = [job.id for job in await _sweep(gateway, data.queue, data.type)]
    retried = 0
    for job_id in ids:
        try:
            job = await gateway.store.get(job_id)
            if job is not None and job.state in DLQ_STATES:
                await gateway.actions.retry(job_id)
                retried += 1
        except (JobNotFound, WrongState):
            continue  # left the DLQ meanwhile
    return Retried(retried=retried)


@delete("/", responses=ERROR_RESPONSES, guards=OPERATOR, status_code=200, summary="Purge the DLQ")
async def purge_dlq(
    gateway: NamedDependency[Gateway], queue: FromQuery[str | None] = None
) -> Purged:
    """Delete the DLQ's jobs (of `queue`, or all) and empty the broker's DLQ queues."""
    if queue is not None and not is_valid_queue(queue):
        raise validation_error("queue", "not a queue name")
    jobs = await _sweep(gateway, queue, None)
    purged = 0
    for job in jobs:
        if await gateway.store.delete(job.id):
            purged += 1
            gateway.session.events.emit_nowait(EventName.DELETED, job)
    queues = {queue} if queue else {j.queue for j in jobs} | set(gateway.settings.queues)
    names = gateway.session.names
    for name in sorted(queues):
        await purge_queue(gateway.session.consuming, names.dead_letter_queue(name))
    return Purged(purged=purged)


async def _sweep(gateway: Gateway, queue: str | None, job_type: str | None) -> list[Job]:
    """Every DLQ job of `queue` and `job_type`, page by page."""
    found: list[Job] = []
    cursor = None
    while True:
        page = await gateway.store.list(
            JobQuery(
                states=DLQ_STATES, queue=queue, type=job_type, limit=_SWEEP_PAGE, cursor=cursor
            )
        )
        found.extend(page.jobs)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


dlq_router = Router(
    path="/api/v1/dlq",
    security=SECURITY,
    route_handlers=[list_dlq, retry_dlq, purge_dlq],
    tags=["dlq"],
)
