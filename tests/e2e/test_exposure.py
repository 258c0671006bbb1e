"""What a gateway exposes to whoever can reach it: every /api/v1 route but the index
carries a role guard, the key check compares fixed-length digests with hmac.compare_digest
against every key (nothing to learn from its timing), and the gateway binds to 127.0.0.1
unless told otherwise."""

from __future__ import annotations

import hmac
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from leveret.gateway.app import create_app
from leveret.gateway.auth import ADMIN, OPERATOR, VIEWER
from leveret.gateway.keys import KEY_PREFIX, KeyFile, Role, digest, new_key
from leveret.gateway.server import bind_address
from leveret.jobs.settings import Settings
from leveret.topology import Names
from tests.conditions import eventually_sync
from tests.e2e.conftest import ROOT, START_TIMEOUT, DevServer, stop_dev
from tests.rabbitmq import AMQP_URL, TEST_QUEUES, delete_namespace

API = "/api/v1"
DEFAULT_PORT = 8080


# --- what is guarded ---------------------------------------------------------------------


def test_every_api_route_but_the_index_is_guarded() -> None:
    """Every method on every /api/v1 path except the index (and CORS preflights) carries one
    of the three role guards: a route added without one fails here, whether or not
    test_auth_routes lists it."""
    guards = {VIEWER[0], OPERATOR[0], ADMIN[0]}
    app = create_app(Settings())
    unguarded = []
    checked = 0
    for route in app.routes:
        if not route.path.startswith(f"{API}/"):
            continue
        for handler in route.route_handlers:
            methods = getattr(handler, "http_methods", {"?"})
            if methods == {"OPTIONS"}:
                continue
            checked += 1
            if not set(handler.guards or ()) & guards:
                unguarded.append(f"{sorted(methods)} {route.path}")
    assert not unguarded
    assert checked >= 16  # the families test_auth_routes covers, at least


# --- constant-time comparison ------------------------------------------------------------


@dataclass
class Spied:
    """The app in this process with three keys, and every compare_digest call it made."""

    client: AsyncTestClient[Any]
    keys: list[str]
    calls: list[tuple[Any, Any]]


@pytest.fixture
async def spied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Spied]:
    file = KeyFile(tmp_path / "api-keys")
    keys = [file.add(f"k{i}", Role.VIEWER) for i in range(3)]
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    # Patched on the module, so whichever way the gateway reaches it is seen.
    monkeypatch.setattr(hmac, "compare_digest", spy)
    namespace = f"s{uuid.uuid4().hex[:10]}"
    settings = Settings(
        amqp_url=AMQP_URL,
        store_url=f"sqlite:///{tmp_path}/leveret.db",
        namespace=namespace,
        api_keys_file=str(file.path),
    )
    try:
        async with AsyncTestClient(app=create_app(settings)) as client:
            yield Spied(client, keys, calls)
    finally:
        await delete_namespace(Names(namespace), TEST_QUEUES)


@pytest.mark.parametrize(
    ("which", "status"),
    [("first", 200), ("last", 200), ("wrong", 401), ("short", 401), ("long", 401)],
)
async def test_the_key_check_compares_fixed_length_digests_in_constant_time(
    spied: Spied, which: str, status: int
) -> None:
    """Through the real app: a matching key (first or last on the ring) and a wrong one (of
    the same, a shorter or a much longer length) each cost one hmac.compare_digest call per
    key on the ring, on two 64-character hex digests: never the presented key itself, never
    an early exit that would tell by its timing how far down the ring a match was."""
    presented = {
        "first": spied.keys[0],
        "last": spied.keys[-1],
        "wrong": new_key(),
        "short": "k",
        "long": KEY_PREFIX + "z" * 10_000,
    }[which]
    answer = await spied.client.get(f"{API}/stats", headers={"X-API-Key": presented})

    assert answer.status_code == status, answer.text
    assert len(spied.calls) == len(spied.keys)
    for candidate, stored in spied.calls:
        assert isinstance(candidate, str)
        assert isinstance(stored, str)
        assert len(candidate) == len(stored) == 64
        assert presented not in (candidate, stored)
    assert {stored for _, stored in spied.calls} == {digest(k) for k in spied.keys}
    assert {candidate for candidate, _ in spied.calls} == {digest(presented)}


# --- the default bind --------------------------------------------------------------------


def test_the_default_bind_is_loopback() -> None:
    assert Settings().http == f"127.0.0.1:{DEFAULT_PORT}"
    assert Settings.from_env({}).http == f"127.0.0.1:{DEFAULT_PORT}"
    assert bind_address(Settings()) == ("127.0.0.1", DEFAULT_PORT)


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process `pid` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            raw, port = local.split(":")
            assert len(raw) == width
            found.add((_address(raw), int(port, 16)))
    return found


def _address(raw: str) -> str:
    """/proc/net/tcp{,6}'s hex address (host byte order per 32-bit word) as text."""
    words = bytes.fromhex(raw)
    packed = b"".join(words[i : i + 4][::-1] for i in range(0, len(words), 4))
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed)


def outward_address() -> str | None:
    """This machine's address on its default route, if it has one that is not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect sends nothing
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


@pytest.mark.slow
def test_dev_without_http_listens_on_127_0_0_1_only(tmp_path: Path) -> None:
    """`leveret dev` with no --http and no LEVERET_HTTP listens on 127.0.0.1:8080 and on
    nothing else (its sockets in /proc/net/tcp and tcp6), and the machine's outward address
    refuses the connection."""
    if port_in_use(DEFAULT_PORT):
        pytest.skip(
            f"SKIPPED: port {DEFAULT_PORT} is taken on this machine, so the default bind of "
            "`leveret dev` cannot be observed; free the port to run this test"
        )
    namespace = f"b{uuid.uuid4().hex[:10]}"
    store_path = tmp_path / "leveret.db"
    log_path = tmp_path / "dev.log"
    env = {**os.environ, "LEVERET_AMQP_URL": AMQP_URL, "PYTHONPATH": str(ROOT)}
    env.pop("LEVERET_HTTP", None)
    command = [
        sys.executable,
        "-m",
        "leveret",
        "dev",
        "--namespace",
        namespace,
        "--store-url",
        f"sqlite:///{store_path}",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=log)
    server = DevServer(f"http://127.0.0.1:{DEFAULT_PORT}", namespace, store_path, log_path, process)
    try:

        def sockets() -> set[tuple[str, int]]:
            if process.poll() is not None:
                output = server.log()
                if "address already in use" in output.lower():
                    pytest.skip(f"SKIPPED: port {DEFAULT_PORT} was taken as `leveret dev` started")
                pytest.fail(f"leveret dev exited with {process.returncode}:\n{output}")
            return listening(process.pid)

        bound = eventually_sync(sockets, timeout=START_TIMEOUT, what="leveret dev listening")
        assert bound == {("127.0.0.1", DEFAULT_PORT)}
        assert httpx.get(f"{server.url}/live", timeout=5).status_code == 200
        outward = outward_address()
        if outward is not None:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((outward, DEFAULT_PORT), timeout=5).close()
    finally:
        stop_dev(server)
