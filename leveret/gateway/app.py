"""`create_app(settings)`: the Litestar application, wired in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from leveret.gateway.errors import EXCEPTION_HANDLERS
from leveret.gateway.middleware import EDGE_MIDDLEWARE
from leveret.gateway.resources import Gateway, open_gateway, provide_gateway
from leveret.gateway.routes.dlq import dlq_router
from leveret.gateway.routes.events import events
from leveret.gateway.routes.fleet import fleet_router
from leveret.gateway.routes.health import PROBES, VERSION
from leveret.gateway.routes.jobs import jobs_router
from leveret.gateway.routes.outcomes import outcomes_router
from leveret.jobs.settings import Settings


def create_app(settings: Settings, *, gateway: Gateway | None = None) -> Litestar:
    """The gateway's app. It opens the store and RabbitMQ at start-up, unless `gateway` is
    given already opened (the CLI opens it first, so that an unreachable service is one
    line and an exit code instead of a server that never becomes ready)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if gateway is not None:
            _attach(app, gateway)
            yield
            return
        async with open_gateway(settings) as opened:
            _attach(app, opened)
            yield

    return Litestar(
        route_handlers=[
            jobs_router,
            outcomes_router,
            dlq_router,
            fleet_router,
            events,
            *PROBES,
        ],
        lifespan=[lifespan],
        # The guard refuses to run without this entry; the lifespan sets the real ring.
        state=State({"keys": None, "gateway": None}),
        dependencies={"gateway": Provide(provide_gateway, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=EDGE_MIDDLEWARE,
        request_max_body_size=settings.max_body,
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins))
        if settings.cors_origins
        else None,
        openapi_config=OpenAPIConfig(
            title="Leveret",
            version=VERSION,
            description="Background jobs on RabbitMQ: GopherQueue's HTTP API, extended.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
            components=Components(
                security_schemes={
                    "ApiKey": SecurityScheme(
                        type="apiKey", name="X-API-Key", security_scheme_in="header"
                    ),
                    "Bearer": SecurityScheme(type="http", scheme="bearer"),
                }
            ),
        ),
        debug=False,
        logging_config=None,  # the process configures logging (CLI), not the app
    )


def _attach(app: Litestar, gateway: Gateway) -> None:
    app.state["gateway"] = gateway
    app.state["keys"] = gateway.keys
