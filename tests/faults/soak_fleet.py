"""The soak's worker fleet behind a TCP proxy, and the faults injected into it."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from yarl import URL

from leveret.broker import BrokerSession, queue_depth
from leveret.jobs import Settings
from tests.conditions import eventually
from tests.faults.soak_plan import QUEUES, SIZE
from tests.integration.conftest import WorkerProcess
from tests.proxy import TcpProxy

WORKERS = 3
CONCURRENCY = 4
TARGET = "tests.faults.soak_handlers:worker"
FLAGS = (
    "--queues",
    ",".join(QUEUES),
    "--concurrency",
    str(CONCURRENCY),
    # Short, so that a SIGTERM hands long jobs back to the queue rather than waiting for them.
    "--shutdown-timeout",
    "1s",
)
# Seconds a worker gets to recover from a fault (reconnect, resubscribe) or to exit.
RECOVERY = 30.0


@dataclass
class Faults:
    """What was done to the fleet, and when (for the failure report)."""

    kills: int = 0
    terms: int = 0
    cuts: int = 0
    history: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.history.append(f"{clock(time.time())} {what}")


class Fleet:
    """The worker processes, all connected through the proxy: started, killed, stopped.
    What goes wrong with them is recorded in `problems` and checked at the end, so that one
    stuck worker does not hide what the rest of the soak would show."""

    def __init__(self, settings: Settings, started: list[WorkerProcess]) -> None:
        self._settings = settings
        self._started = started  # the worker_processes fixture's: it kills what is left
        self.live: list[WorkerProcess] = []
        self.problems: list[str] = []
        self._readers: list[threading.Thread] = []
        self._output: dict[int, list[str]] = {}

    def start(self) -> None:
        process = WorkerProcess(self._settings, TARGET, *FLAGS)
        self._started.append(process)
        self.live.append(process)
        # Read the output as it comes: a full pipe would block the worker's logging.
        lines = self._output.setdefault(process.process.pid, [])
        reader = threading.Thread(target=_read_output, args=(process, lines), daemon=True)
        reader.start()
        self._readers.append(reader)

    async def kill(self, process: WorkerProcess) -> None:
        """SIGKILL `process` and start another in its place."""
        self.live.remove(process)
        process.process.send_signal(signal.SIGKILL)
        self.start()
        assert await _exit_code(process, 10) == -signal.SIGKILL

    async def terminate(self, process: WorkerProcess) -> None:
        """SIGTERM `process` and start another in its place; it must exit cleanly."""
        self.live.remove(process)
        process.process.send_signal(signal.SIGTERM)
        self.start()
        await self._until_exit(process, "SIGTERM during the soak")

    async def until_full_strength(self, session: BrokerSession, after: str) -> None:
        """Wait until each work queue has one consumer per live worker again (no more: the
        consumers of a worker just killed must be gone too)."""
        for process in list(self.live):
            if process.process.poll() is not None:
                self.problems.append(f"worker {process.process.pid} died ({after})")
                self.live.remove(process)
                self.start()
        for queue_name in QUEUES:
            name = session.names.work_queue(queue_name)
            try:
                await eventually(
                    partial(queue_depth, session.consuming, name),
                    lambda found: found[1] == len(self.live),
                    timeout=RECOVERY,
                    what=f"{len(self.live)} consumers on {name} after {after}",
                )
            except AssertionError as exc:
                self.problems.append(f"{exc}; {await _consumers(session.names.namespace)}")
                return

    async def stop(self) -> None:
        """SIGTERM every worker; each must finish what it runs and exit cleanly."""
        stopping, self.live = self.live, []
        for process in stopping:
            process.process.send_signal(signal.SIGTERM)
        for process in stopping:
            await self._until_exit(process, "SIGTERM at the end")

    async def _until_exit(self, process: WorkerProcess, after: str) -> None:
        try:
            code = await _exit_code(process, RECOVERY)
        except AssertionError:
            self.problems.append(
                f"worker {process.process.pid} still running {RECOVERY:g}s after {after}; killed"
            )
            process.process.kill()
            return
        if code != 0:
            self.problems.append(f"worker {process.process.pid} exit code {code} after {after}")

    def close(self) -> None:
        for process in self._started:
            process.stop()
        for reader in self._readers:
            reader.join(timeout=10)

    @property
    def processes(self) -> int:
        return len(self._started)

    @contextmanager
    def diagnosed(self, faults: Faults, job_ids: Iterable[str] = ()) -> Iterator[None]:
        """On failure, attach the faults made, and each worker's exit code and output: the
        lines naming `job_ids` and its warnings and errors, or else its last lines."""
        try:
            yield
        except BaseException as exc:
            exc.add_note("faults:\n" + "\n".join(faults.history))
            wanted = tuple(job_ids)
            for process in self._started:
                pid = process.process.pid
                lines = self._output.get(pid, [])
                if wanted:
                    lines = [x for x in lines if any(i in x for i in wanted) or _alarming(x)]
                shown = "\n".join(lines[-60:])
                exc.add_note(f"--- worker {pid} (exit code {process.process.poll()}) ---\n{shown}")
            raise


async def _consumers(namespace: str) -> str:
    """The broker's list of this namespace's consumers and their channels (a failure report)."""
    command = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        "-q",
        "list_consumers",
        "queue_name",
        "channel_pid",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(command.communicate(), 30)
    found = [line.replace("\t", " ") for line in out.decode().splitlines() if namespace in line]
    return "the broker lists: " + "; ".join(found)


def _alarming(line: str) -> bool:
    # aio-pika logs every robust channel's close callback at ERROR on a cut: noise here.
    return (" WARNING " in line or " ERROR " in line) and "aio_pika.tools" not in line


def clock(epoch: float) -> str:
    """Wall-clock time of day with milliseconds, as the workers' log lines show it."""
    return time.strftime("%H:%M:%S", time.localtime(epoch)) + f",{int(epoch * 1000) % 1000:03d}"


def _read_output(process: WorkerProcess, lines: list[str]) -> None:
    stream = process.process.stdout
    assert stream is not None
    try:
        for line in stream:
            lines.append(line.decode(errors="replace").rstrip())
    except (OSError, ValueError):  # closed under us by the fixture's kill: the end anyway
        return


async def _poll(process: WorkerProcess) -> int | None:
    return process.process.poll()


async def _exit_code(process: WorkerProcess, timeout: float) -> int | None:
    return await eventually(
        lambda: _poll(process),
        lambda code: code is not None,
        timeout=timeout,
        what=f"worker {process.process.pid} to exit",
    )


async def inject_faults(
    fleet: Fleet,
    proxy: TcpProxy,
    session: BrokerSession,
    rng: random.Random,
    faults: Faults,
    until: float,
) -> None:
    """Until `until` (monotonic), one fault every `fault_every` seconds: SIGKILL, cut,
    SIGTERM, cut, ...; after each, the fleet must come back to full strength."""
    for kind in itertools.cycle(("kill", "cut", "term", "cut")):
        if time.monotonic() + SIZE.fault_every > until:
            return
        await asyncio.sleep(SIZE.fault_every)  # the pace of the faults, not a wait
        if kind == "kill":
            faults.kills += 1
            victim = rng.choice(fleet.live)
            faults.note(f"SIGKILL {victim.process.pid}")
            await fleet.kill(victim)
        elif kind == "term":
            faults.terms += 1
            victim = rng.choice(fleet.live)
            faults.note(f"SIGTERM {victim.process.pid}")
            await fleet.terminate(victim)
        else:
            faults.cuts += 1
            faults.note("cut")
            proxy.cut()
        faults.note(f"fleet {[p.process.pid for p in fleet.live]}")
        await fleet.until_full_strength(session, faults.history[-2])
        faults.note("full strength")


def through(settings: Settings, proxy: TcpProxy) -> Settings:
    url = URL(settings.amqp_url).with_host("127.0.0.1").with_port(proxy.port)
    return dataclasses.replace(settings, amqp_url=str(url))
