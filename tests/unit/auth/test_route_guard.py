"""API keys: the route guard lets each role reach its routes and no more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.testing import TestClient

from leveret.gateway.auth import requires
from leveret.gateway.keys import (
    KeyFile,
    KeyRing,
    Role,
    new_key,
)

# --- the guard ---------------------------------------------------------------------------


@get("/read", guards=[requires(Role.VIEWER)])
async def read() -> str:
    return "read"


@get("/operate", guards=[requires(Role.OPERATOR)])
async def operate() -> str:
    return "operate"


@get("/administer", guards=[requires(Role.ADMIN)])
async def administer() -> str:
    return "administer"


ROUTES = ("/read", "/operate", "/administer")


def client_for(ring: KeyRing | None) -> TestClient[Litestar]:
    app = Litestar([read, operate, administer], state=State({"keys": ring}))
    return TestClient(app)


@pytest.fixture
def keys(keys_path: Path) -> dict[Role, str]:
    file = KeyFile(keys_path)
    return {role: file.add(f"{role.value}-key", role) for role in Role}


@pytest.fixture
def client(keys_path: Path, keys: dict[Role, str]) -> Iterator[TestClient[Litestar]]:
    with client_for(KeyRing(keys_path)) as client:
        yield client


@pytest.mark.parametrize("route", ROUTES)
def test_no_key_is_401(client: TestClient[Litestar], route: str) -> None:
    response = client.get(route)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("route", ROUTES)
def test_an_unknown_key_is_401_and_not_echoed(client: TestClient[Litestar], route: str) -> None:
    bad = new_key()
    response = client.get(route, headers={"X-API-Key": bad})
    assert response.status_code == 401
    assert bad not in response.text


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, {"/read"}),
        (Role.OPERATOR, {"/read", "/operate"}),
        (Role.ADMIN, set(ROUTES)),
    ],
)
@pytest.mark.parametrize("style", ["x-api-key", "bearer"])
def test_each_role_reaches_its_routes_and_no_more(
    client: TestClient[Litestar],
    keys: dict[Role, str],
    role: Role,
    allowed: set[str],
    style: str,
) -> None:
    key = keys[role]
    headers = {"X-API-Key": key} if style == "x-api-key" else {"Authorization": f"Bearer {key}"}
    for route in ROUTES:
        response = client.get(route, headers=headers)
        if route in allowed:
            assert (response.status_code, response.text) == (200, route.lstrip("/"))
        else:
            assert response.status_code == 403, route
            assert key not in response.text


@pytest.mark.parametrize("ring", [None, KeyRing(None)], ids=["none", "open-ring"])
def test_without_keys_everything_is_open(ring: KeyRing | None) -> None:
    with client_for(ring) as client:
        for route in ROUTES:
            assert client.get(route).status_code == 200


def test_an_app_without_a_ring_in_its_state_does_not_open_up() -> None:
    with TestClient(Litestar([read])) as client:
        assert client.get("/read").status_code == 500
