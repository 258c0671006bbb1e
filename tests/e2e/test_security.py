"""Security against a running `leveret dev` with a keys file, as an operator would run it:
keys never reach a log (even at DEBUG), an answer, `leveret keys list` or the keys file, and
are shown once, at `keys add`; the key check compares fixed-length digests with
hmac.compare_digest against every key; error answers never echo a payload or a key; every
/api/v1 route but the index is guarded; and the gateway binds to 127.0.0.1 unless told.

tests/e2e/test_auth_routes.py has the route x role matrix; this file does not repeat it.
"""

from __future__ import annotations

import hmac
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from leveret.gateway.app import create_app
from leveret.gateway.auth import ADMIN, OPERATOR, VIEWER
from leveret.gateway.keys import KEY_PREFIX, KeyFile, Role, digest, new_key
from leveret.gateway.server import bind_address
from leveret.jobs.settings import Settings
from leveret.topology import Names
from tests.conditions import eventually_sync
from tests.e2e.conftest import ROOT, START_TIMEOUT, DevServer, start_dev, stop_dev
from tests.rabbitmq import AMQP_URL, TEST_QUEUES, delete_namespace

API = "/api/v1"
MiB = 1 << 20
DEFAULT_PORT = 8080
RELOAD_WITHIN = 5.0  # seconds; the gateway rereads the keys file every second


@dataclass
class Secured:
    """A `leveret dev` logging at DEBUG, with a keys file: its keys by name, and the file."""

    server: DevServer
    keys: dict[str, str]
    file: KeyFile

    def secrets(self) -> list[str]:
        """Every key and every key's stored digest: none may show anywhere."""
        return [*self.keys.values(), *(digest(key) for key in self.keys.values())]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    workdir = tmp_path_factory.mktemp("security")
    file = KeyFile(workdir / "api-keys")
    keys = {name: file.add(name, role) for name, role in _HOLDERS.items()}
    # DEBUG: the most a deployment can be made to log; a key must not show even then.
    server = start_dev(workdir, "--api-keys-file", str(file.path), "--log-level", "DEBUG")
    yield Secured(server, keys, file)
    stop_dev(server)


_HOLDERS = {"boss": Role.ADMIN, "dash": Role.VIEWER, "doomed": Role.OPERATOR}


@pytest.fixture(scope="module")
def http(secured: Secured) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.server.url, timeout=10) as client:
        yield client


def header_styles(key: str) -> list[dict[str, str]]:
    return [{"X-API-Key": key}, {"Authorization": f"Bearer {key}"}]


def leveret(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m leveret ARGS` as its own process."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("LEVERET_API_KEYS_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "leveret", *args],
        env=full_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- keys never logged, never shown twice ------------------------------------------------


def test_no_key_in_the_debug_log_for_valid_wrong_malformed_or_revoked_keys(
    http: httpx.Client, secured: Secured
) -> None:
    """Requests with each valid key, a wrong one, malformed ones and a key revoked (through
    the CLI) while the server runs, in both headers: the server's whole DEBUG log holds
    neither any of those keys nor any digest of them, and no answer does."""
    wrong = new_key()
    malformed = [
        KEY_PREFIX + "x" * 4096,
        "not a key at all",
        KEY_PREFIX,
        "lvk_" + "é".encode().hex(),
    ]
    presented = [*secured.keys.values(), wrong, *malformed]
    answers = []
    for key in presented:
        for headers in header_styles(key):
            answers.append(http.get(f"{API}/stats", headers=headers))
            answers.append(http.post(f"{API}/jobs", json={"type": "echo"}, headers=headers))
    assert {a.status_code for a in answers} >= {200, 201, 401}

    revoked = leveret("keys", "revoke", "doomed", "--file", str(secured.file.path))
    assert revoked.returncode == 0, revoked.stderr
    doomed = secured.keys["doomed"]
    eventually_sync(
        lambda: http.get(f"{API}/stats", headers={"X-API-Key": doomed}).status_code,
        lambda status: status == 401,
        timeout=RELOAD_WITHIN,
        what="the revoked key refused",
    )
    for headers in header_styles(doomed):
        answers.append(http.get(f"{API}/stats", headers=headers))
        assert answers[-1].status_code == 401

    log = secured.server.log()
    assert "reloaded" in log  # the log read is the live server's, after the revocation
    for secret in (*secured.secrets(), wrong, digest(wrong), *malformed, *map(digest, malformed)):
        assert secret not in log
        for answer in answers:
            assert secret not in answer.text
            assert secret not in str(answer.headers)


def test_a_key_is_shown_once_at_add_and_never_by_list_or_in_the_file(
    http: httpx.Client, secured: Secured
) -> None:
    """`leveret keys add` prints the key once (stdout, nothing else there) and it works
    against the running server; `keys list`, as a table or JSON, shows its id and never the
    key or its full digest; the keys file holds the digest and never the key."""
    path = str(secured.file.path)
    added = leveret("keys", "add", "once", "--role", "viewer", "--file", path)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith(KEY_PREFIX)
    assert added.stdout == key + "\n"
    assert key not in added.stderr
    assert "once" in added.stderr
    eventually_sync(
        lambda: http.get(f"{API}/stats", headers={"X-API-Key": key}).status_code,
        lambda status: status == 200,
        timeout=RELOAD_WITHIN,
        what="the new key accepted",
    )

    table = leveret("keys", "list", "--file", path)
    as_json = leveret("keys", "list", "--file", path, "--json")
    later = leveret("keys", "add", "twice", "--role", "viewer", "--file", path)
    for shown in (table, as_json, later):
        assert shown.returncode == 0, shown.stderr
        for secret in (key, digest(key), *secured.secrets()):
            assert secret not in shown.stdout + shown.stderr
    assert digest(key)[:8] in table.stdout
    assert {"id": digest(key)[:8], "name": "once", "role": "viewer"} in msgspec.json.decode(
        as_json.stdout
    )
    stored = secured.file.path.read_text()
    assert digest(key) in stored
    assert key not in stored
    assert KEY_PREFIX not in stored  # no key of any holder was ever written
    assert key not in secured.server.log()


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


# --- no payload or secret in error answers -----------------------------------------------


def _marker() -> str:
    return f"SECRET{uuid.uuid4().hex}"


def test_error_answers_and_the_log_never_echo_a_payload_or_a_key(
    http: httpx.Client, secured: Secured
) -> None:
    """Refused submissions whose payload, type, queue or tags carry a marker, malformed
    bodies around one, and keys made of one: each answer is a 4xx JSON error without the
    marker, and the server's log never has it either."""
    admin = {"X-API-Key": secured.keys["boss"]}
    json_headers = {**admin, "Content-Type": "application/json"}
    msgpack_headers = {**admin, "Content-Type": "application/msgpack"}
    answers: list[tuple[str, str, httpx.Response]] = []

    def attempt(name: str, send: Any) -> None:
        marker = _marker()
        answers.append((name, marker, send(marker)))

    jobs = f"{API}/jobs"
    attempt(
        "truncated JSON",
        lambda m: http.post(
            jobs, content=f'{{"type": "echo", "payload": "{m}'.encode(), headers=json_headers
        ),
    )
    attempt(
        "a bad field",
        lambda m: http.post(
            jobs, json={"type": "echo", "payload": {"s": m}, "priority": "high"}, headers=admin
        ),
    )
    attempt(
        "an oversize payload",
        lambda m: http.post(jobs, json={"type": "echo", "payload": m + "x" * MiB}, headers=admin),
    )
    attempt(
        "a bad type",
        lambda m: http.post(jobs, json={"type": f"bad type {m}", "payload": m}, headers=admin),
    )
    attempt(
        "a bad queue",
        lambda m: http.post(
            jobs, json={"type": "echo", "queue": f"Q/{m}", "payload": m}, headers=admin
        ),
    )
    attempt(
        "an oversize tag",
        lambda m: http.post(jobs, json={"type": "echo", "tags": {"k": m * 20}}, headers=admin),
    )
    attempt(
        "broken msgpack",
        lambda m: http.post(
            jobs,
            content=b"\x82\xa4type\xa4echo\xa7payload\xd9\xff" + m.encode(),
            headers=msgpack_headers,
        ),
    )
    for atomic in (True, False):
        attempt(
            f"a bad batch item (atomic={atomic})",
            lambda m, a=atomic: http.post(
                f"{jobs}/batch",
                json={
                    "atomic": a,
                    "jobs": [
                        {"type": "no such/type", "payload": m},
                        {"type": "echo", "payload": m + "y" * MiB},
                    ],
                },
                headers=admin,
            ),
        )
    for style in ("X-API-Key", "Authorization"):
        prefix = "Bearer " if style == "Authorization" else ""
        attempt(
            f"a key made of a marker ({style})",
            lambda m, s=style, p=prefix: http.post(
                jobs, json={"type": "echo", "payload": m}, headers={s: p + KEY_PREFIX + m}
            ),
        )

    log = secured.server.log()
    for name, marker, answer in answers:
        assert marker not in answer.text, (name, answer.text[:300])
        assert marker not in log, name
        assert answer.headers["content-type"].startswith("application/json"), name
        body = answer.json()
        if "atomic=False" in name:  # answered per item: every item refused
            assert answer.status_code == 201, (name, answer.text[:300])
            assert body["rejected"] == 2, (name, answer.text[:300])
        else:
            assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text[:300])
            assert body["error"]["code"], name


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


def test_the_index_is_open_and_tells_no_secret(http: httpx.Client, secured: Secured) -> None:
    """GET /api/v1 (the one open /api/v1 route) answers without a key, and lists endpoints,
    not keys."""
    answer = http.get(API)
    assert answer.status_code == 200
    assert answer.json()["name"] == "leveret"
    for secret in secured.secrets():
        assert secret not in answer.text


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
