"""The gateway when RabbitMQ stops answering or goes away: 503 with Retry-After, and no job
left half-created. The outage is real: a TCP proxy between the gateway and RabbitMQ."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from yarl import URL

from tests.conditions import eventually
from tests.e2e.conftest import DevServer, start_dev, stop_dev
from tests.proxy import TcpProxy
from tests.rabbitmq import AMQP_URL


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    url = URL(AMQP_URL)
    opened = TcpProxy(url.host or "127.0.0.1", url.port or 5672)
    await opened.start()
    yield opened
    await opened.close()


@pytest.fixture
async def dev_behind(proxy: TcpProxy, tmp_path: Path) -> AsyncIterator[DevServer]:
    amqp_url = str(URL(AMQP_URL).with_host("127.0.0.1").with_port(proxy.port))
    env = {"LEVERET_AMQP_URL": amqp_url, "LEVERET_PUBLISH_TIMEOUT": "1s"}
    # In a thread: the proxy forwards on this event loop, which must keep running meanwhile.
    server = await asyncio.to_thread(start_dev, tmp_path, env=env)
    yield server
    proxy.resume()
    await asyncio.to_thread(stop_dev, server)


async def test_submit_to_a_stalled_broker_is_503_and_stores_no_live_job(
    dev_behind: DevServer, proxy: TcpProxy
) -> None:
    async with httpx.AsyncClient(base_url=dev_behind.url, timeout=15) as http:
        proxy.stall()
        refused = await http.post(
            "/api/v1/jobs", json={"type": "echo", "payload": 1, "idempotency_key": "order-7"}
        )
        assert refused.status_code == 503
        assert refused.headers["retry-after"].isdigit()
        assert refused.json()["error"]["code"] == "unavailable"

        proxy.resume()
        accepted = await http.post(
            "/api/v1/jobs", json={"type": "echo", "payload": 2, "idempotency_key": "order-7"}
        )
        assert accepted.status_code == 201  # the key was free: nothing live was kept
        job_id = accepted.json()["id"]
        done = await http.post(f"/api/v1/jobs/{job_id}/wait", json={"timeout": "10s"})
        assert done.json()["state"] == "completed"

        listed = (await http.get("/api/v1/jobs")).json()["jobs"]
        states = sorted(job["state"] for job in listed)
        assert states == ["cancelled", "completed"]  # the refused one is void, not pending
        (void,) = [job for job in listed if job["state"] == "cancelled"]
        assert "not accepted" in void["last_error"]


async def test_broker_gone_makes_submit_503_and_the_gateway_unready(
    dev_behind: DevServer, proxy: TcpProxy
) -> None:
    async with httpx.AsyncClient(base_url=dev_behind.url, timeout=15) as http:
        assert (await http.get("/ready")).status_code == 200
        await proxy.close()  # connections cut and no new ones accepted: RabbitMQ is gone

        async def readiness() -> int:
            return (await http.get("/ready")).status_code

        await eventually(readiness, lambda status: status == 503, what="gateway unready")
        ready = await http.get("/ready")
        assert ready.headers["retry-after"].isdigit()
        assert ready.json()["components"]["broker"]["status"] == "down"
        for queue in ("default", "never-declared"):  # a new queue needs a declare first
            refused = await http.post("/api/v1/jobs", json={"type": "echo", "queue": queue})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "unavailable"
        assert (await http.get("/live")).status_code == 200
