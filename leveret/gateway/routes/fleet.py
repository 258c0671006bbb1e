"""`/api/v1/stats` and `/api/v1/queues`: counts from the store, depths from RabbitMQ."""

from __future__ import annotations

import asyncio

from litestar import Router, get
from litestar.di import NamedDependency

from leveret.broker import queue_depth
from leveret.gateway.auth import SECURITY, VIEWER
from leveret.gateway.errors import ERROR_RESPONSES
from leveret.gateway.resources import Gateway
from leveret.gateway.views import (
    FleetSummary,
    QueueCounts,
    QueueInfo,
    QueueList,
    StatsResponse,
    timestamp,
)
from leveret.jobs.errors import BrokerError
from leveret.jobs.model import utcnow
from leveret.jobs.states import JobState


@get("/stats", responses=ERROR_RESPONSES, guards=VIEWER, summary="Job counts and the fleet")
async def stats(gateway: NamedDependency[Gateway]) -> StatsResponse:
    """How many jobs are in each state, the store's size on disk, and how many consumers
    each work queue has."""
    counts, storage = await asyncio.gather(gateway.store.counts(), gateway.store.storage_bytes())
    totals = {state: 0 for state in JobState}
    for by_state in counts.values():
        for state, n in by_state.items():
            totals[state] += n
    known = _known_queues(gateway, counts)
    names = gateway.session.names
    depths = await asyncio.gather(*(_depth(gateway, names.work_queue(q)) for q in known))
    consumers = {queue: n for queue, (_, n) in zip(known, depths, strict=True)}
    return StatsResponse(
        queue=QueueCounts(
            **{str(state): n for state, n in totals.items()},
            total_jobs=sum(totals.values()),
            storage_bytes=storage,
            timestamp=timestamp(utcnow()),
        ),
        workers=FleetSummary(consumers=sum(consumers.values()), queues=consumers),
    )


@get("/queues", responses=ERROR_RESPONSES, guards=VIEWER, summary="Queues")
async def queues(gateway: NamedDependency[Gateway]) -> QueueList:
    """Every queue: ready messages and consumers (RabbitMQ), DLQ depth, counts by state."""
    counts = await gateway.store.counts()
    names = gateway.session.names
    known = _known_queues(gateway, counts)
    # One passive declare per queue, all at once: a round trip each, but not one after another.
    work, dead = await asyncio.gather(
        asyncio.gather(*(_depth(gateway, names.work_queue(q)) for q in known)),
        asyncio.gather(*(_depth(gateway, names.dead_letter_queue(q)) for q in known)),
    )
    found = [
        QueueInfo(
            name=queue,
            ready=ready,
            consumers=consumers,
            dlq=dlq_ready,
            counts={str(state): n for state, n in sorted(counts.get(queue, {}).items())},
        )
        for queue, (ready, consumers), (dlq_ready, _) in zip(known, work, dead, strict=True)
    ]
    return QueueList(queues=found)


def _known_queues(gateway: Gateway, counts: dict[str, dict[JobState, int]]) -> list[str]:
    return sorted(set(gateway.settings.queues) | set(counts))


async def _depth(gateway: Gateway, queue_name: str) -> tuple[int, int]:
    try:
        return await queue_depth(gateway.session.consuming, queue_name)
    except BrokerError:  # not declared yet: no worker or job has used it
        return 0, 0


fleet_router = Router(
    path="/api/v1", security=SECURITY, route_handlers=[stats, queues], tags=["fleet"]
)
