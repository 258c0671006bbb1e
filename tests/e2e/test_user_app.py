"""A user's application with its own `jobs.py` and `workers/` package, run as the README says:
`leveret worker workers.email:worker` from the application's directory.

When Leveret installed top-level `jobs` and `workers` packages, its own won the import and
this failed with `No module named 'workers.email'`. The handler reports which files its
modules came from, so the test proves it was the application's that ran.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from leveret.client import Client
from leveret.topology import Names
from tests.conditions import eventually
from tests.e2e.conftest import DevServer, start_dev
from tests.rabbitmq import AMQP_URL, TEST_QUEUES, delete_namespace

# The application's own queue: `leveret dev`'s demo worker consumes `default`, and would fail
# a job type it has no handler for.
QUEUE = "mail"

APP = {
    "jobs.py": '''
        """The application's job catalogue: the name Leveret's own `jobs` package once took."""

        SEND_EMAIL = "app.send_email"
        SIGNATURE = "-- sent by the application's workers/email.py"
    ''',
    "workers/__init__.py": '''
        """The application's workers: the name Leveret's own `workers` package once took."""
    ''',
    "workers/email.py": '''
        """Sending e-mail, a Worker of the application's own."""

        from typing import Any

        import jobs
        import workers
        from jobs import SEND_EMAIL, SIGNATURE
        from leveret import JobContext, Worker

        worker = Worker()


        @worker.handler(SEND_EMAIL)
        async def send_email(ctx: JobContext, payload: Any) -> dict[str, Any]:
            return {
                "body": f"to {payload['to']} {SIGNATURE}",
                "files": [jobs.__file__, workers.__file__, __file__],
            }
    ''',
}


def write_app(root: Path) -> Path:
    """The application's files under `root`; its directory."""
    for name, text in APP.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def leveret_command() -> Path:
    """The `leveret` console script installed beside this Python, as a user runs it."""
    script = Path(sys.executable).with_name("leveret")
    if not script.exists():
        pytest.fail(f"no leveret command at {script}: install the project (pip install -e .)")
    return script


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevServer]:
    """A `leveret dev` for this test alone; its namespace, with the app's queue, deleted after."""
    workdir = tmp_path / "gateway"
    workdir.mkdir()
    server = start_dev(workdir)
    yield server
    server.stop()
    asyncio.run(delete_namespace(Names(server.namespace), (*TEST_QUEUES, QUEUE)))


@pytest.fixture
def app_worker(dev: DevServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`leveret worker workers.email:worker` run from the application's directory, with
    nothing of Leveret's repository on its path: only what is installed."""
    app = write_app(tmp_path / "app")
    env = {key: value for key, value in dev.env.items() if key != "PYTHONPATH"}
    command = [
        str(leveret_command()),
        "worker",
        "workers.email:worker",
        "--queues",
        QUEUE,
        "--namespace",
        dev.namespace,
        "--store-url",
        f"sqlite:///{dev.store_path}",
    ]
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=app, env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    # Shown when the test failed (pytest prints a fixture's output on failure).
    print(f"--- leveret worker (exit code {process.returncode}) ---\n{log.read_text()}")


async def until_consuming(process: subprocess.Popen[bytes], namespace: str) -> None:
    """Return once the app's worker consumes its queue; fail at once if it exited."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:

        async def consumers() -> int:
            if process.poll() is not None:
                pytest.fail(f"leveret worker exited with {process.returncode}")
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(
                    Names(namespace).work_queue(QUEUE), passive=True
                )
            except aio_pika.exceptions.ChannelNotFoundEntity:
                return 0  # not declared yet (and the broker closed the channel)
            await channel.close()
            return queue.declaration_result.consumer_count or 0

        await eventually(consumers, timeout=30, what=f"a consumer on {QUEUE}")


async def send_email(url: str) -> Any:
    """Submit the app's job through the gateway; its output once completed."""
    async with Client(url, timeout=10) as client:
        job = await client.submit("app.send_email", {"to": "ada@example.com"}, queue=QUEUE)
        done = await client.wait(job.id, timeout=30)
        assert done.state == "completed", done
        return (await client.get_result(job.id)).output


def test_a_worker_of_the_apps_own_workers_package_completes_a_job(
    dev: DevServer, app_worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    asyncio.run(until_consuming(app_worker, dev.namespace))

    output = asyncio.run(send_email(dev.url))

    assert output["body"] == "to ada@example.com -- sent by the application's workers/email.py"
    app = (tmp_path / "app").resolve()
    loaded = [Path(os.path.realpath(file)) for file in output["files"]]
    assert loaded == [
        app / "jobs.py",
        app / "workers" / "__init__.py",
        app / "workers" / "email.py",
    ]
