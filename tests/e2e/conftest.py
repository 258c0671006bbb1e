"""End-to-end fixtures: `leveret dev` started as a separate process, as a user would."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from leveret.client import Client
from leveret.jobs.store import SQLiteStore
from leveret.topology import Names
from tests.conditions import eventually_sync
from tests.rabbitmq import AMQP_URL, TEST_QUEUES, delete_namespace, require_rabbitmq

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0

_rabbitmq = pytest.fixture(scope="session", autouse=True)(require_rabbitmq)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DevServer:
    """A running `leveret dev`: its base URL, namespace, store file and output."""

    url: str
    namespace: str
    store_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait for a graceful exit; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_dev(workdir: Path, *extra: str, env: dict[str, str] | None = None) -> DevServer:
    """Start `leveret dev` on a free port, a fresh namespace and a store in `workdir`; return
    once /ready answers 200 (or fail with its output)."""
    namespace = f"e{uuid.uuid4().hex[:10]}"
    port = free_port()
    store_path = workdir / f"{namespace}.db"
    log_path = workdir / f"{namespace}.log"
    full_env = {
        **os.environ,
        "LEVERET_AMQP_URL": AMQP_URL,
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "leveret",
        "dev",
        "--http",
        f"127.0.0.1:{port}",
        "--namespace",
        namespace,
        "--store-url",
        f"sqlite:///{store_path}",
        *extra,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=full_env, cwd=workdir, stdout=log, stderr=log)
    server = DevServer(f"http://127.0.0.1:{port}", namespace, store_path, log_path, process)
    server.env = full_env

    def answer() -> int | None:
        if process.poll() is not None:
            pytest.fail(f"leveret dev exited with {process.returncode}:\n{server.log()}")
        try:
            return httpx.get(f"{server.url}/ready", timeout=1).status_code
        except httpx.TransportError:
            return None

    try:
        eventually_sync(answer, lambda status: status == 200, timeout=START_TIMEOUT, what="ready")
    except AssertionError:
        server.stop()
        pytest.fail(f"leveret dev was not ready within {START_TIMEOUT}s:\n{server.log()}")
    return server


def stop_dev(server: DevServer) -> None:
    """Stop the server and delete what it declared on RabbitMQ: the usual queues and every
    queue its store has seen a job in (schemathesis makes up queue names)."""
    server.stop()
    asyncio.run(_delete_namespace(server))


async def _delete_namespace(server: DevServer) -> None:
    store = SQLiteStore.from_url(f"sqlite:///{server.store_path}")
    await store.open()
    try:
        seen = await store.counts()
    finally:
        await store.close()
    await delete_namespace(Names(server.namespace), (*TEST_QUEUES, *seen))


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One `leveret dev` (open API, demo handlers) shared by a module's tests."""
    server = start_dev(tmp_path_factory.mktemp("dev"))
    yield server
    stop_dev(server)


def unique() -> str:
    """A fresh value, to tag a test's jobs apart from every other test's."""
    return uuid.uuid4().hex


@pytest.fixture
async def client(dev: DevServer) -> AsyncIterator[Client]:
    """The SDK's async client on the module's `leveret dev`."""
    async with Client(dev.url, timeout=15) as sdk:
        yield sdk


@pytest.fixture
async def http(dev: DevServer) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client on the module's `leveret dev`."""
    async with httpx.AsyncClient(base_url=dev.url, timeout=15) as raw:
        yield raw
