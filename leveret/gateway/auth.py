"""The route guard: a request passes only with a key whose role allows the route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from leveret.gateway.keys import KeyRing, Role


class Unauthorized(NotAuthorizedException):
    """No API key was presented, or it is not on the ring (401)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(PermissionDeniedException):
    """The API key is valid but its role does not allow this (403)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail)


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]
"""A Litestar route guard."""


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries in `X-API-Key` or `Authorization: Bearer`, if any."""
    key = headers.get("x-api-key", "").strip()
    if key:
        return key
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def requires(role: Role) -> Guard:
    """A guard that lets a request through only with a key whose role allows `role`."""

    # async, though it never awaits: Litestar runs a plain-function guard in a thread pool,
    # a thread hop on every request for a check that takes microseconds.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        # By item, not attribute: State is a Mapping, so `state.keys` is its keys() method.
        # A missing entry is a wiring bug, and must not silently open the API.
        state = connection.app.state
        if "keys" not in state:
            raise RuntimeError("the app's state has no 'keys' (a KeyRing, or None to be open)")
        ring = state["keys"]
        if ring is None:
            return
        if not isinstance(ring, KeyRing):
            raise TypeError(f"app.state['keys'] must be a KeyRing or None, not {type(ring)}")
        if ring.open:
            return
        presented = presented_key(connection.headers)
        if presented is None:
            raise Unauthorized("an API key is required: send X-API-Key or Authorization: Bearer")
        key = ring.authenticate(presented)
        if key is None:
            raise Unauthorized("the API key is not valid")
        if not key.role.allows(role):
            raise Forbidden(f"the key {key.name!r} is a {key.role.value}; this needs {role.value}")

    return guard


# The guards of the three kinds of route: reading, operating, administering.
VIEWER: list[Guard] = [requires(Role.VIEWER)]
OPERATOR: list[Guard] = [requires(Role.OPERATOR)]
ADMIN: list[Guard] = [requires(Role.ADMIN)]

# The OpenAPI security requirement of the guarded routes: either header will do.
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]
