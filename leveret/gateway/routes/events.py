"""`/api/v1/events`: job state changes as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from leveret.gateway.auth import VIEWER
from leveret.gateway.errors import ERROR_RESPONSES
from leveret.gateway.hub import EventFilter
from leveret.gateway.resources import Gateway
from leveret.gateway.routes.job_path import job_id_of
from leveret.gateway.views import job_view
from leveret.jobs.events import JobEvent

KEEPALIVE = 15.0  # seconds between comment frames, so proxies keep the stream open
_CONNECTED = b'event: connected\ndata: {"status":"connected"}\n\n'
_ENCODER = msgspec.json.Encoder()


def frame(event: JobEvent) -> bytes:
    """One SSE frame: `event:` first, then `data:` on one line (JSON never holds a raw
    newline), then `id:` - the order GopherQueue's SDK parser relies on."""
    data = _ENCODER.encode(job_view(event.job))
    return b"event: job.%s\ndata: %s\nid: %s\n\n" % (
        event.name.encode(),
        data,
        event.id.encode(),
    )


@get(
    "/api/v1/events",
    responses=ERROR_RESPONSES,
    guards=VIEWER,
    summary="Stream job events",
    media_type="text/event-stream",
    tags=["events"],
)
async def events(
    gateway: NamedDependency[Gateway],
    job_id: FromQuery[str | None] = None,
    job_type: Annotated[str | None, QueryParameter(name="type")] = None,
    queue: FromQuery[str | None] = None,
) -> Stream:
    """A `connected` frame, then one `job.<name>` frame per state change of the jobs that
    match the filters, and a keepalive comment every 15 s."""
    wanted = EventFilter(
        job_id=job_id_of(job_id) if job_id else None, type=job_type or None, queue=queue or None
    )

    async def frames() -> AsyncIterator[bytes]:
        with gateway.hub.stream(wanted) as subscription:
            yield _CONNECTED
            while True:
                event = await subscription.next(KEEPALIVE)
                yield b": keepalive\n\n" if event is None else frame(event)

    return Stream(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
