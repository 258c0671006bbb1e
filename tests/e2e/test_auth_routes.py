"""API keys against a running `leveret dev` with a keys file: every guarded route family,
called with no key, a wrong key and each role's key (both headers), answers 401, 403 or lets
the request through as the roles in docs/api.md say; the probes and the reference need no key; a
revoked key stops working; no key ever shows in an answer or in the server's output."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from leveret.gateway.keys import KeyFile, Role, digest, new_key
from tests.conditions import eventually
from tests.e2e.conftest import DevServer, start_dev, stop_dev

API = "/api/v1"
UNKNOWN = str(uuid.uuid4())  # a well-formed id no job has: the guard answers before the 404
REVOKE_WITHIN = 5.0  # seconds; the gateway rereads the keys file every second


@dataclass(frozen=True)
class Route:
    """One guarded operation, a body that gets past validation, and the least role it needs."""

    method: str
    path: str
    needs: Role
    body: dict[str, Any] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path.replace(UNKNOWN, '{id}')}"


ROUTES = [
    # submit
    Route("POST", f"{API}/jobs", Role.OPERATOR, {"type": "echo"}),
    Route("POST", f"{API}/jobs/batch", Role.OPERATOR, {"jobs": [{"type": "echo"}]}),
    # read
    Route("GET", f"{API}/jobs", Role.VIEWER),
    Route("GET", f"{API}/jobs/{UNKNOWN}", Role.VIEWER),
    Route("GET", f"{API}/jobs/{UNKNOWN}/result", Role.VIEWER),
    Route("GET", f"{API}/jobs/{UNKNOWN}/wait?timeout=1s", Role.VIEWER),
    Route("POST", f"{API}/jobs/{UNKNOWN}/wait", Role.VIEWER, {"timeout": "1s"}),
    Route("GET", f"{API}/stats", Role.VIEWER),
    Route("GET", f"{API}/queues", Role.VIEWER),
    Route("GET", f"{API}/events", Role.VIEWER),
    # cancel, retry
    Route("POST", f"{API}/jobs/{UNKNOWN}/cancel", Role.OPERATOR, {"reason": "auth test"}),
    Route("POST", f"{API}/jobs/{UNKNOWN}/retry", Role.OPERATOR, {}),
    # delete
    Route("DELETE", f"{API}/jobs/{UNKNOWN}", Role.ADMIN),
    # DLQ
    Route("GET", f"{API}/dlq", Role.OPERATOR),
    Route("POST", f"{API}/dlq/retry", Role.OPERATOR, {}),
    Route("DELETE", f"{API}/dlq", Role.OPERATOR),
]
OPEN_PATHS = ["/live", "/ready", "/health", "/schema", "/"]


@dataclass(frozen=True)
class Caller:
    """Who calls: a role's key, a wrong key or none, sent in one of the two headers."""

    name: str
    role: Role | None  # None: no valid key
    key: str | None  # None: no key at all (filled from the keys file for roles)
    header: str  # "x-api-key" or "bearer"

    def headers(self, keys: dict[str, str]) -> dict[str, str]:
        key = keys[self.name] if self.role is not None else self.key
        if key is None:
            return {}
        if self.header == "bearer":
            return {"Authorization": f"Bearer {key}"}
        return {"X-API-Key": key}

    def __str__(self) -> str:
        return f"{self.name}-{self.header}"


WRONG = new_key()  # well-formed, on no ring
CALLERS = [
    Caller("anonymous", None, None, "none"),
    *(Caller("wrong", None, WRONG, header) for header in ("x-api-key", "bearer")),
    *(
        Caller(role.value, role, None, header)
        for role in (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
        for header in ("x-api-key", "bearer")
    ),
]


@dataclass
class Secured:
    """A `leveret dev` with a keys file: its keys in plaintext by name, and the file."""

    server: DevServer
    keys: dict[str, str]
    file: KeyFile


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    workdir = tmp_path_factory.mktemp("auth")
    file = KeyFile(workdir / "api-keys")
    keys = {role.value: file.add(role.value, role) for role in Role}
    keys["doomed"] = file.add("doomed", Role.VIEWER)  # the revocation test's own key
    server = start_dev(workdir, "--api-keys-file", str(file.path))
    yield Secured(server, keys, file)
    stop_dev(server)


@pytest.fixture(scope="module")
def http(secured: Secured) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.server.url, timeout=10) as client:
        yield client


def call(http: httpx.Client, route: Route, headers: dict[str, str]) -> httpx.Response:
    """The route's answer; for the endless event stream, only its status and headers."""
    with http.stream(route.method, route.path, json=route.body, headers=headers) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response
        response.read()
        return response


def assert_no_secret(secured: Secured, text: str) -> None:
    """Neither a key (the wrong one included) nor a key's stored hash is in `text`."""
    for key in (*secured.keys.values(), WRONG):
        assert key not in text
        assert digest(key) not in text


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == code, response.text


@pytest.mark.parametrize("caller", CALLERS, ids=str)
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_route_guard(http: httpx.Client, secured: Secured, route: Route, caller: Caller) -> None:
    response = call(http, route, caller.headers(secured.keys))
    if caller.role is None:
        assert_error(response, 401, "unauthorized")
    elif not caller.role.allows(route.needs):
        assert_error(response, 403, "forbidden")
    else:
        assert response.status_code not in (401, 403), (response.status_code, response.text)
    if response.is_stream_consumed:  # the event stream's body never ends
        assert_no_secret(secured, response.text)


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_open_without_key(http: httpx.Client, path: str) -> None:
    assert http.get(path).status_code == 200


def test_key_never_in_output(http: httpx.Client, secured: Secured) -> None:
    """Every key, used where it may and where it may not, and the wrong one, show in no
    answer (errors included) and nowhere in the server's output."""
    for key in (*secured.keys.values(), WRONG):
        for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
            for route in ROUTES:
                if not route.path.endswith("/events"):
                    assert_no_secret(secured, call(http, route, headers).text)
            malformed = http.get(f"{API}/jobs/not-a-uuid", headers=headers)
            assert_no_secret(secured, malformed.text)
    assert_no_secret(secured, secured.server.log())


async def test_revoked_key_stops_working(secured: Secured) -> None:
    async with httpx.AsyncClient(base_url=secured.server.url, timeout=10) as client:

        async def status(name: str) -> int:
            answer = await client.get(f"{API}/stats", headers={"X-API-Key": secured.keys[name]})
            return answer.status_code

        assert await status("doomed") == 200
        assert secured.file.revoke("doomed")
        await eventually(
            lambda: status("doomed"),
            lambda code: code == 401,
            timeout=REVOKE_WITHIN,
            what="the revoked key refused",
        )
        assert await status("viewer") == 200  # the reload kept the other keys
    assert "reloaded" in secured.server.log()
