"""ASGI middleware at the edge: request ids on every response, and msgpack bodies for the
clients that ask for them (the handlers only ever see and write JSON)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

import msgspec
import uuid_utils
from litestar.types import Middleware

# Plain ASGI types: these middlewares rewrite messages, which Litestar's strict TypedDicts
# would make a cast on every line.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID = b"x-request-id"
MSGPACK = b"application/msgpack"
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


def request_ids(app: ASGIApp) -> ASGIApp:
    """Echo the request's X-Request-ID (when it is a sane token) or make one."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID, b"")
        # uuid_utils, not uuid.uuid4: the standard one reads os.urandom per call (tens of µs).
        request_id = given if _SAFE_ID.match(given) else uuid_utils.uuid4().hex.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID, request_id)]
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware


def msgpack_bodies(app: ASGIApp) -> ASGIApp:
    """Accept `application/msgpack` request bodies and answer in msgpack when the client
    sends `Accept: application/msgpack`, by translating to and from JSON at the edge."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        inbound = headers.get(b"content-type", b"").split(b";")[0].strip() == MSGPACK
        outbound = MSGPACK in headers.get(b"accept", b"")
        if not inbound and not outbound:
            await app(scope, receive, send)
            return
        if inbound:
            scope, receive = await _as_json_request(scope, receive)
        await app(scope, receive, _msgpack_responder(send) if outbound else send)

    return middleware


async def _as_json_request(scope: Scope, receive: Receive) -> tuple[Scope, Receive]:
    body = bytearray()
    while True:
        message = await receive()
        body.extend(message.get("body", b""))
        if not message.get("more_body", False):
            break
    try:
        converted = msgspec.json.encode(msgspec.msgpack.decode(bytes(body)))
    except (msgspec.DecodeError, msgspec.EncodeError, TypeError):
        converted = b"\x00"  # not msgpack: let the JSON decoder refuse it as malformed
    replaced = [
        (k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")
    ]
    replaced += [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(converted)),
    ]
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": converted, "more_body": False}

    new_scope = dict(scope)
    new_scope["headers"] = replaced
    return new_scope, replay


def _msgpack_responder(send: Send) -> Send:
    start: Message | None = None
    chunks = bytearray()

    async def responder(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            if not content_type.startswith(b"application/json"):
                await send(message)
                return
            start = message
            return
        if message["type"] != "http.response.body" or start is None:
            await send(message)
            return
        chunks.extend(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = msgspec.msgpack.encode(msgspec.json.decode(bytes(chunks))) if chunks else b""
        headers = [
            (k, v)
            for k, v in start.get("headers", [])
            if k not in (b"content-type", b"content-length")
        ]
        headers += [(b"content-type", MSGPACK), (b"content-length", b"%d" % len(body))]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return responder


# Litestar types middleware with its strict ASGI TypedDicts; these speak the same protocol.
EDGE_MIDDLEWARE: list[Middleware] = [
    cast("Middleware", request_ids),
    cast("Middleware", msgpack_bodies),
]
