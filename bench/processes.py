"""The processes a scenario starts (workers, servers, load generators, raw consumers), run
as a user would run them and stopped with SIGTERM so that they finish cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from bench.sandbox import Sandbox
from leveret.broker import connect, queue_depth
from leveret.jobs import BrokerError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
"""The repository: children run from it, so that `bench` and Leveret's packages import."""


_COMPLAINT = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|^Traceback")
_EXPECTED = "no API keys configured"  # the gateway runs open on purpose: not news


class BenchError(Exception):
    """A scenario could not run: a process died, or a condition did not come in time."""


class Child:
    """A child process; its stderr (and stdout unless piped) go to a log file."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log

    @classmethod
    async def start(
        cls,
        name: str,
        args: Sequence[str],
        *,
        sandbox: Sandbox,
        pipe_stdout: bool = False,
        profile: Path | None = None,
    ) -> Child:
        """Start `python [-m cProfile -o <profile>] <args>` with the sandbox's settings."""
        log = sandbox.log(name)
        command = [sys.executable]
        if profile is not None:
            command += ["-m", "cProfile", "-o", str(profile)]
        # Only the bench's own LEVERET_* settings: a stray one in the caller's environment
        # would make the run differ from what its report says.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEVERET_")}
        env = {**inherited, **sandbox.environment(), "PYTHONPATH": str(ROOT)}
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                *command,
                *args,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipe_stdout else sink,
                stderr=sink,
            )
        return cls(name, process, log)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self.process.returncode is None

    def check(self) -> None:
        """BenchError (with the end of its log) if the process has exited."""
        if not self.running:
            raise BenchError(f"{self.name} exited with {self.process.returncode}: {self.tail()}")

    def tail(self, lines: int = 15) -> str:
        """The last lines of the log."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    def report_complaints(self, most: int = 5) -> None:
        """Log the first warnings and errors the process wrote: its log goes away with the
        sandbox, and a warning (dropped events, a lost consumer) may explain a figure."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return
        complaints = [line for line in lines if _COMPLAINT.search(line) and _EXPECTED not in line]
        for line in complaints[:most]:
            log.warning("%s: %s", self.name, line)
        if len(complaints) > most:
            log.warning("%s: … and %d more", self.name, len(complaints) - most)

    async def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
        return await self.process.wait()


async def stop_all(children: Sequence[Child]) -> None:
    """Stop every child at once."""
    await asyncio.gather(*(child.stop() for child in children))


@contextlib.asynccontextmanager
async def worker_fleet(sandbox: Sandbox, scenario: str) -> AsyncIterator[list[Child]]:
    """`plan.workers` x `leveret worker bench.handlers:worker`, consuming the sandbox's work
    queue (which must be declared) when the block starts; stopped when it ends."""
    plan = sandbox.plan
    fleet: list[Child] = []
    try:
        for index in range(plan.workers):
            profile = None
            if plan.profile is not None:
                profile = plan.profile / f"{scenario}-worker{index + 1}.prof"
            args = ["-m", "leveret", "worker", "bench.handlers:worker", "--log-level", "WARNING"]
            fleet.append(
                await Child.start(f"worker{index + 1}", args, sandbox=sandbox, profile=profile)
            )
        await until_consumers(sandbox, fleet, plan.workers)
        yield fleet
    finally:
        await stop_all(fleet)
        for child in fleet:
            child.report_complaints()


async def until_consumers(
    sandbox: Sandbox, children: Sequence[Child], count: int, *, queue: str | None = None
) -> None:
    """Return once `queue` (default: the sandbox's work queue) has `count` consumers."""
    name = queue or sandbox.queue
    connection = await connect(sandbox.plan.amqp_url, name="leveret-bench/watch")
    try:
        async with asyncio.timeout(60):
            while True:
                for child in children:
                    child.check()
                try:
                    _, consumers = await queue_depth(connection, name)
                except BrokerError:  # not declared yet: the workers declare it as they start
                    consumers = 0
                if consumers >= count:
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise BenchError(f"{count} consumer(s) on {name} did not appear within 60s") from None
    finally:
        await connection.close()
