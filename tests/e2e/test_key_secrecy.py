"""Keys kept secret, against a running `leveret dev` with a keys file, as an operator would
run it: keys never reach a log (even at DEBUG), an answer, `leveret keys list` or the keys
file, and are shown once, at `keys add`; error answers never echo a payload or a key; the
one open /api/v1 route tells no secret.

tests/e2e/test_auth_routes.py has the route x role matrix; this file does not repeat it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest

from leveret.gateway.keys import KEY_PREFIX, KeyFile, Role, digest, new_key
from tests.conditions import eventually_sync
from tests.e2e.conftest import ROOT, DevServer, start_dev, stop_dev

API = "/api/v1"
MiB = 1 << 20
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
            jobs, json={"type": "echo", "payload": {"s": m}, "priority": "urgent"}, headers=admin
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


def test_the_index_is_open_and_tells_no_secret(http: httpx.Client, secured: Secured) -> None:
    """GET /api/v1 (the one open /api/v1 route) answers without a key, and lists endpoints,
    not keys."""
    answer = http.get(API)
    assert answer.status_code == 200
    assert answer.json()["name"] == "leveret"
    for secret in secured.secrets():
        assert secret not in answer.text
