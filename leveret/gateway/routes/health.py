"""Probes and signposts: liveness, readiness, health detail, the API root, the home page."""

from __future__ import annotations

import asyncio
from importlib.metadata import version

import msgspec
from litestar import MediaType, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from leveret.gateway.errors import RETRY_AFTER
from leveret.gateway.resources import Gateway
from leveret.jobs.errors import LeveretError

PROBE_TIMEOUT = 2.0  # seconds a readiness probe may spend on each component
_NO_SUCH_JOB = "00000000-0000-7000-8000-000000000000"
VERSION = version("leveret")


class Component(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One dependency's state."""

    status: str  # "up" or "down"
    detail: str | None = None


class Health(msgspec.Struct, kw_only=True):
    """The gateway and what it depends on."""

    status: str  # "ok" or "unavailable"
    version: str
    components: dict[str, Component]


async def _check(gateway: Gateway) -> Health:
    broker = (
        Component(status="up")
        if gateway.session.publishing.connected.is_set()
        and gateway.session.consuming.connected.is_set()
        else Component(status="down", detail="reconnecting to RabbitMQ")
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await gateway.store.get(_NO_SUCH_JOB)
        store = Component(status="up")
    except (LeveretError, TimeoutError) as exc:
        store = Component(status="down", detail=str(exc) or "no answer in time")
    up = broker.status == store.status == "up"
    return Health(
        status="ok" if up else "unavailable",
        version=VERSION,
        components={"broker": broker, "store": store},
    )


def _answer(health: Health) -> Response[Health]:
    if health.status == "ok":
        return Response(health, status_code=HTTP_200_OK)
    headers = {"Retry-After": str(RETRY_AFTER)}
    return Response(health, status_code=HTTP_503_SERVICE_UNAVAILABLE, headers=headers)


@get("/live", summary="Liveness", tags=["health"])
async def live() -> dict[str, str]:
    """200 while the process serves requests."""
    return {"status": "ok"}


_UNAVAILABLE = {503: ResponseSpec(Health, description="a component is down (Retry-After)")}


@get("/ready", summary="Readiness", tags=["health"], responses=_UNAVAILABLE)
async def ready(gateway: NamedDependency[Gateway]) -> Response[Health]:
    """200 when RabbitMQ and the store answer; 503 with Retry-After otherwise."""
    return _answer(await _check(gateway))


@get("/health", summary="Health detail", tags=["health"], responses=_UNAVAILABLE)
async def health(gateway: NamedDependency[Gateway]) -> Response[Health]:
    """Each component's state (the same verdict as /ready, with detail)."""
    return _answer(await _check(gateway))


class ApiRoot(msgspec.Struct, kw_only=True):
    """What this API is and where its parts are."""

    name: str
    version: str
    endpoints: dict[str, str]


@get("/api/v1", summary="API root", tags=["health"])
async def api_root() -> ApiRoot:
    """The API's name, version and endpoints."""
    return ApiRoot(
        name="leveret",
        version=VERSION,
        endpoints={
            "jobs": "/api/v1/jobs",
            "batch": "/api/v1/jobs/batch",
            "events": "/api/v1/events",
            "stats": "/api/v1/stats",
            "queues": "/api/v1/queues",
            "dlq": "/api/v1/dlq",
            "schema": "/schema",
            "health": "/health",
        },
    )


_HOME = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Leveret</title></head>
<body><h1>Leveret {VERSION}</h1>
<p>Background jobs on RabbitMQ. The dashboard comes with its own release; meanwhile:</p>
<ul><li><a href="/schema">API reference (OpenAPI)</a></li>
<li><a href="/api/v1">API root</a></li><li><a href="/health">Health</a></li></ul>
</body></html>"""


@get("/", media_type=MediaType.HTML, include_in_schema=False)
async def home() -> str:
    """A plain page linking to the API's reference and root."""
    return _HOME


PROBES = [live, ready, health, api_root, home]
