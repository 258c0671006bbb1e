"""Soak: a stream of jobs of mixed queues, priorities, types and fates runs on three worker
processes while the test SIGKILLs and SIGTERMs workers (replacing each) and cuts their AMQP
connections through a TCP proxy. Afterwards every job must be terminal; its state must be
what its plan and its handler's logged executions say; no execution may have started after
its job ended; and the DLQs must hold exactly the failed and dead-lettered jobs. The counts
are printed whether or not the checks pass.

Sized for two to three minutes on a small CI machine. Environment variables make it larger:

- LEVERET_SOAK_JOBS: jobs submitted (default 900);
- LEVERET_SOAK_SECONDS: how long jobs keep coming and faults keep happening (default 90);
- LEVERET_SOAK_FAULT_EVERY: seconds between two faults (default 4);
- LEVERET_SOAK_SEED: the random seed of the plan (default: a fresh one, printed).

    LEVERET_SOAK_JOBS=6000 LEVERET_SOAK_SECONDS=600 .venv/bin/pytest tests/faults/test_soak.py
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import os
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path

import pytest
from yarl import URL

from broker import BrokerSession, Producer, queue_depth
from broker.admin import JobAdmin
from jobs import (
    ACTIVE_STATES,
    DLQ_STATES,
    TERMINAL_STATES,
    Backoff,
    BackoffStrategy,
    Job,
    JobState,
    Settings,
)
from jobs.errors import WrongState
from jobs.store import JobQuery, SQLiteStore
from jobs.submission import Submission
from tests.conditions import eventually
from tests.faults.soak_handlers import LOG_ENV, Execution, read_executions
from tests.integration.conftest import WorkerProcess
from tests.proxy import TcpProxy
from topology import DELAY_TIERS_MS


@dataclass(frozen=True)
class Size:
    """How big a soak to run (see the module docstring)."""

    jobs: int = int(os.environ.get("LEVERET_SOAK_JOBS", "900"))
    seconds: float = float(os.environ.get("LEVERET_SOAK_SECONDS", "90"))
    fault_every: float = float(os.environ.get("LEVERET_SOAK_FAULT_EVERY", "4"))
    seed: int = int(os.environ.get("LEVERET_SOAK_SEED", str(random.randrange(1 << 32))))

    @property
    def settle(self) -> float:
        """Seconds the fleet gets, once the load ends, to bring every job to an end."""
        return 120 + self.jobs / 20


SIZE = Size()  # read once: the timeout marker below needs it at import

QUEUES = ("default", "alpha", "beta")
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
ASYNC_TYPES = ("soak.work", "soak.report")
TYPES = (*ASYNC_TYPES, "soak.blocking")
BACKOFF = Backoff(strategy=BackoffStrategy.CONSTANT, initial=0.2, jitter=False)
DOOMED_ATTEMPTS = 3
# Attempts of every other job: more than the faults can take from one job, so that only the
# doomed end in dead_letter (a worker killed mid-attempt costs its job that attempt).
SPARE_ATTEMPTS = 10
# A store write reads the clock, then waits for SQLite's write lock: two writes racing (a
# cancel and a redelivery's takeover) may commit in the other order than their timestamps.
ENGINE_SKEW = 0.1
# Seconds a worker gets to recover from a fault (reconnect, resubscribe) or to exit.
RECOVERY = 30.0
# Between the engine moving a job to running and its handler's first line, a busy worker's
# event loop may run other work for a while.
HANDLER_LAG = 0.5


class Fate(StrEnum):
    """What the test plans for a job; its handler or the test makes it happen."""

    SUCCEED = "succeed"
    FLAKY = "flaky"  # fails its first attempt, then succeeds
    DOOMED = "doomed"  # fails every attempt: dead_letter
    REJECTED = "rejected"  # raises Reject: failed
    CANCEL_WAITING = "cancel_waiting"  # delayed; cancelled long before its time comes
    CANCEL_RUNNING = "cancel_running"  # long; cancelled once the store says it runs
    CANCEL_RACING = "cancel_racing"  # cancelled at a random moment: maybe too late


WEIGHTS = {
    Fate.SUCCEED: 50,
    Fate.FLAKY: 12,
    Fate.DOOMED: 8,
    Fate.REJECTED: 8,
    Fate.CANCEL_WAITING: 5,
    Fate.CANCEL_RUNNING: 5,
    Fate.CANCEL_RACING: 12,
}
CANCELLED = "cancelled"  # what a cancel that came in time records


@dataclass
class Plan:
    """One job: its fate, what is submitted, its id once submitted, what its cancel found."""

    fate: Fate
    submission: Submission
    job_id: str = ""
    cancel: str | None = None  # CANCELLED, or the terminal state a too-late cancel found


def make_plans(size: Size, rng: random.Random) -> list[Plan]:
    """`size.jobs` plans, with fates drawn by WEIGHTS."""
    fates = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=size.jobs)
    return [Plan(fate, _submission(fate, rng)) for fate in fates]


def _submission(fate: Fate, rng: random.Random) -> Submission:
    fail = {Fate.FLAKY: "first", Fate.DOOMED: "always", Fate.REJECTED: "reject"}
    ms, delay, types = rng.randint(20, 300), None, TYPES
    if fate is Fate.CANCEL_RUNNING:
        ms, types = rng.randint(3000, 5000), ASYNC_TYPES  # interruptible, and long to be seen
    elif fate is Fate.CANCEL_RACING:
        ms = rng.randint(100, 1500)
    elif fate is Fate.CANCEL_WAITING:
        delay = rng.uniform(8, 20)
    return Submission(
        type=rng.choice(types),
        payload={"ms": ms, "fail": fail.get(fate, "none")},
        queue=rng.choice(QUEUES),
        priority=rng.randint(0, 4),
        delay=delay,
        max_attempts=DOOMED_ATTEMPTS if fate is Fate.DOOMED else SPARE_ATTEMPTS,
        backoff=BACKOFF,
        tags={"fate": fate.value},
    )


@dataclass
class Faults:
    """What was done to the fleet, and when (for the failure report)."""

    kills: int = 0
    terms: int = 0
    cuts: int = 0
    history: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.history.append(f"{_clock(time.time())} {what}")


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


def _clock(epoch: float) -> str:
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


class Load:
    """Submits the plans in waves over the soak's seconds and makes the cancels happen."""

    def __init__(
        self, plans: list[Plan], producer: Producer, admin: JobAdmin, rng: random.Random
    ) -> None:
        self.plans = plans
        self.by_id: dict[str, Plan] = {}
        self.done = asyncio.Event()
        self._producer = producer
        self._admin = admin
        self._rng = rng

    async def submit(self, began: float) -> None:
        waves = max(1, math.ceil(SIZE.seconds))
        per_wave = math.ceil(len(self.plans) / waves)
        racing: set[asyncio.Task[None]] = set()
        waiting: list[Plan] = []
        for wave in range(waves):
            chunk = self.plans[wave * per_wave : (wave + 1) * per_wave]
            if chunk:
                jobs = await self._producer.submit_many([p.submission for p in chunk])
                for plan, job in zip(chunk, jobs, strict=True):
                    plan.job_id = job.id
                    self.by_id[job.id] = plan
            for plan in waiting:  # the previous wave's: still seconds from their time
                await self._cancel_in_time(plan)
            waiting = [p for p in chunk if p.fate is Fate.CANCEL_WAITING]
            for plan in chunk:
                if plan.fate is Fate.CANCEL_RACING:
                    racing.add(asyncio.create_task(self._cancel_later(plan)))
            # The pace of the load: one wave a second.
            await asyncio.sleep(max(0.0, began + wave + 1 - time.monotonic()))
        for plan in waiting:
            await self._cancel_in_time(plan)
        await asyncio.gather(*racing)
        self.done.set()

    async def cancel_when_running(self) -> None:
        """Cancel every CANCEL_RUNNING job as soon as the store says it runs."""
        running = JobQuery(
            states=frozenset({JobState.RUNNING}), tags={"fate": Fate.CANCEL_RUNNING}, limit=1000
        )
        targets = [p for p in self.plans if p.fate is Fate.CANCEL_RUNNING]

        async def cancel_those_running() -> int:
            for job in (await self._producer.store.list(running)).jobs:
                plan = self.by_id.get(job.id)  # None: its wave's submit has not returned yet
                if plan is not None and plan.cancel is None:
                    plan.cancel = await self._try_cancel(plan)
            return sum(p.cancel is None for p in targets)

        try:
            await eventually(
                cancel_those_running,
                lambda left: self.done.is_set() and left == 0,
                timeout=SIZE.seconds + SIZE.settle,
                what="every cancel_running job seen running and cancelled",
            )
        except AssertionError as exc:
            for plan in (p for p in targets if p.cancel is None):
                job = await self._producer.store.get(plan.job_id) if plan.job_id else None
                exc.add_note(f"never seen running: {plan.job_id} {job and job.state}")
            raise

    async def _cancel_later(self, plan: Plan) -> None:
        await asyncio.sleep(self._rng.uniform(0, 2))  # a cancel at a random moment: the fault
        plan.cancel = await self._try_cancel(plan)

    async def _cancel_in_time(self, plan: Plan) -> None:
        plan.cancel = await self._try_cancel(plan)
        assert plan.cancel == CANCELLED, f"job {plan.job_id}, still delayed, not cancelled"

    async def _try_cancel(self, plan: Plan) -> str:
        try:
            cancelled = await self._admin.cancel(plan.job_id, "soak")
        except WrongState as exc:
            return exc.state  # it had ended already
        assert cancelled.state is JobState.CANCELLED
        return CANCELLED


async def until_all_ended(store: SQLiteStore, total: int) -> None:
    async def tally() -> Counter[JobState]:
        found: Counter[JobState] = Counter()
        for by_state in (await store.counts()).values():
            found.update(by_state)
        return found

    try:
        await eventually(
            tally,
            lambda found: sum(found.values()) == total and set(found) <= TERMINAL_STATES,
            timeout=SIZE.settle,
            what=f"all {total} jobs in a terminal state",
        )
    except AssertionError as exc:
        stuck = await store.list(JobQuery(states=ACTIVE_STATES, limit=20))
        for job in stuck.jobs:
            exc.add_note(
                f"stuck: {job.id} {job.type} {job.state} attempt {job.attempt} "
                f"worker {job.worker} error {job.last_error!r}"
            )
        raise


async def until_queues_empty(session: BrokerSession) -> None:
    """Wait until no message is left in a work queue or a delay tier (a cancelled job's
    message still travels until its delay is over, and is dropped on arrival)."""
    names = [session.names.work_queue(q) for q in QUEUES]
    names += [session.names.delay_queue(ms) for ms in DELAY_TIERS_MS]

    async def ready() -> dict[str, int]:
        depths = {name: (await queue_depth(session.consuming, name))[0] for name in names}
        return {name: n for name, n in depths.items() if n}

    await eventually(ready, lambda left: not left, timeout=60, what="work and delay queues empty")


async def drain_dead_letters(session: BrokerSession) -> dict[str, list[str]]:
    """The message ids in each queue's DLQ (the messages are taken: the test ends here)."""
    channel = await session.consuming.channel()
    found: dict[str, list[str]] = {}
    try:
        for queue_name in QUEUES:
            name = session.names.dead_letter_queue(queue_name)
            dlq = await channel.declare_queue(name, passive=True)
            ids = found.setdefault(queue_name, [])
            while (message := await dlq.get(no_ack=True, fail=False)) is not None:
                ids.append(message.message_id or "<no message id>")
    finally:
        await channel.close()
    return found


def through(settings: Settings, proxy: TcpProxy) -> Settings:
    url = URL(settings.amqp_url).with_host("127.0.0.1").with_port(proxy.port)
    return dataclasses.replace(settings, amqp_url=str(url))


@dataclass
class Verdict:
    """What the checks found: problems per check (each must be empty) and the counts."""

    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    derived: Counter[str] = field(default_factory=Counter)
    closest: float = -math.inf  # latest start of an execution relative to its job's end
    overlaps: int = 0  # executions still running when their job ended (a later attempt won)
    stopped_after: float = 0.0  # the longest a cancelled job's handler ran on after the cancel


_ENDED_BY = {"ok": JobState.COMPLETED, "reject": JobState.FAILED, "error": JobState.DEAD_LETTER}


def judge(
    plans: list[Plan], jobs: dict[str, Job], runs: list[Execution], dlq: dict[str, list[str]]
) -> Verdict:
    verdict = Verdict()
    by_job: dict[str, list[Execution]] = defaultdict(list)
    for run in runs:
        by_job[run.job].append(run)
    for plan in plans:
        job = jobs.get(plan.job_id)
        if job is None:
            verdict.problems["submitted, then gone from the store"].append(plan.job_id)
            continue
        _check_fate(plan, job, verdict)
        _check_executions(job, by_job[job.id], verdict)
        if plan.fate is Fate.CANCEL_WAITING and by_job[job.id]:
            verdict.problems["ran though cancelled while waiting"].append(job.id)
    _check_dead_letters(jobs, dlq, verdict)
    return verdict


def _check_fate(plan: Plan, job: Job, verdict: Verdict) -> None:
    expected = {
        Fate.SUCCEED: JobState.COMPLETED,
        Fate.FLAKY: JobState.COMPLETED,
        Fate.DOOMED: JobState.DEAD_LETTER,
        Fate.REJECTED: JobState.FAILED,
        Fate.CANCEL_WAITING: JobState.CANCELLED,
    }.get(plan.fate)
    if expected is None:  # cancelled in time, or found ended: then it must have completed
        expected = JobState.CANCELLED if plan.cancel == CANCELLED else JobState.COMPLETED
        if plan.cancel not in (CANCELLED, JobState.COMPLETED):
            verdict.problems["cancel found the job in the wrong end"].append(
                f"{job.id}: {plan.cancel}"
            )
    if job.state is not expected:
        verdict.problems["state not the planned one"].append(
            f"{job.id} {plan.fate}: {job.state}, expected {expected} "
            f"(attempt {job.attempt}, {job.error_category}: {job.last_error!r})"
        )
    if plan.fate is Fate.FLAKY and job.attempt < 2:
        verdict.problems["flaky job completed at its first attempt"].append(job.id)


def _check_executions(job: Job, runs: list[Execution], verdict: Verdict) -> None:
    """The job's state follows from the execution the store accepted last, and none of its
    executions started after it ended."""
    if job.completed_at is None:
        verdict.problems["terminal without completed_at"].append(job.id)
        return
    ended = job.completed_at.timestamp()
    for run in runs:
        if run.attempt > (job.max_attempts or 0):
            verdict.problems["ran past max_attempts"].append(f"{job.id} attempt {run.attempt}")
        if run.engine_start is None:
            verdict.problems["ran without a start time"].append(f"{job.id} {run.attempt}")
            continue
        engine_late = run.engine_start - ended
        verdict.closest = max(verdict.closest, engine_late)
        if engine_late > ENGINE_SKEW or run.start - ended > HANDLER_LAG:
            verdict.problems["started after its job ended"].append(
                f"{job.id} attempt {run.attempt} pid {run.pid}: engine {engine_late:+.3f}s, "
                f"handler {run.start - ended:+.3f}s after {job.state}"
            )
        if run.end is not None and run.end > ended:
            if job.state is JobState.CANCELLED:
                # Recorded first, then the handler is told to stop: how long it took.
                verdict.stopped_after = max(verdict.stopped_after, run.end - ended)
            else:
                verdict.overlaps += 1
    if job.state is JobState.CANCELLED:
        verdict.derived[JobState.CANCELLED] += 1
        return
    pid = _pid(job.worker)
    accepted = [r for r in runs if r.attempt == job.attempt and r.pid == pid and r.outcome]
    if accepted:
        derived = _ENDED_BY.get(accepted[-1].outcome or "", f"ended {accepted[-1].outcome}")
    elif job.state is JobState.DEAD_LETTER and job.error_category == "lost":
        derived = JobState.DEAD_LETTER  # its last worker died; the takeover did not run it
    else:
        derived = "no execution"
    verdict.derived[derived] += 1
    if derived != job.state:
        verdict.problems["state not what its executions did"].append(
            f"{job.id}: {job.state} at attempt {job.attempt} on {job.worker}, but {derived}"
        )


def _check_dead_letters(jobs: dict[str, Job], dlq: dict[str, list[str]], verdict: Verdict) -> None:
    expected = {job.id: job.queue for job in jobs.values() if job.state in DLQ_STATES}
    found = {job_id: queue for queue, ids in dlq.items() for job_id in ids}
    for job_id in sorted(expected.keys() - found.keys()):
        verdict.problems["in a DLQ state, not in the DLQ"].append(
            f"{job_id} ({jobs[job_id].state})"
        )
    for job_id in sorted(found.keys() - expected.keys()):
        state = jobs[job_id].state if job_id in jobs else "unknown"
        verdict.problems["in the DLQ, not in a DLQ state"].append(f"{job_id} ({state})")
    for job_id in sorted(expected.keys() & found.keys()):
        if expected[job_id] != found[job_id]:
            verdict.problems["in another queue's DLQ"].append(job_id)


def _pid(worker: str | None) -> int | None:
    parts = (worker or "").split("/")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def summary(
    plans: list[Plan],
    jobs: dict[str, Job],
    runs: list[Execution],
    dlq: dict[str, list[str]],
    verdict: Verdict,
    faults: Faults,
    fleet: Fleet,
    proxy: TcpProxy,
    timings: tuple[float, float],
) -> str:
    def line(counts: Counter[str]) -> str:
        return ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))

    cancels = Counter(
        f"{p.fate.removeprefix('cancel_')} {'cancelled' if p.cancel == CANCELLED else 'too late'}"
        for p in plans
        if p.cancel is not None
    )
    copies = Counter(i for ids in dlq.values() for i in ids)
    doubled = sorted(i for i, n in copies.items() if n > 1)
    loaded, settled = timings
    return "\n".join(
        [
            f"soak: {len(plans)} jobs (seed {SIZE.seed}); {WORKERS} workers x {CONCURRENCY}; "
            f"queues {', '.join(QUEUES)}; priorities 0-4; types {', '.join(TYPES)}",
            f"  planned:    {line(Counter(p.fate.value for p in plans))}",
            f"  by queue:   {line(Counter(j.queue for j in jobs.values()))}",
            f"  final:      {line(Counter(j.state.value for j in jobs.values()))}",
            f"  from logs:  {line(Counter(str(s) for s in verdict.derived.elements()))}",
            f"  cancels:    {line(cancels)}",
            f"  executions: {len(runs)} started; "
            f"{line(Counter(r.outcome or 'killed mid-run' for r in runs))}; "
            f"{verdict.overlaps} still running when another attempt ended their job; "
            f"cancelled handlers ran on for {verdict.stopped_after:.2f}s at most",
            f"  faults:     {faults.kills} SIGKILL, {faults.terms} SIGTERM, {faults.cuts} cuts; "
            f"{fleet.processes} worker processes; {proxy.connections} proxied connections",
            f"  DLQ:        {copies.total()} messages for {len(copies)} jobs; "
            f"more than one copy of {len(doubled)} {doubled[:3]}",
            f"  closest:    the latest start of an execution was {verdict.closest * 1000:+.0f} ms "
            "from its job's end (the engine's clock)",
            f"  duration:   {loaded:.1f}s of load and faults, {settled:.1f}s to settle",
        ]
    )


@pytest.mark.slow
@pytest.mark.timeout(SIZE.seconds + SIZE.settle + 240)
async def test_soak_under_kills_stops_and_cuts_loses_nothing_and_runs_nothing_twice_late(
    settings: Settings,
    store: SQLiteStore,
    worker_processes: list[WorkerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(SIZE.seed)
    plans = make_plans(SIZE, rng)
    log_path = tmp_path / "executions.log"
    monkeypatch.setenv(LOG_ENV, str(log_path))  # the workers inherit it
    url = URL(settings.amqp_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5672)
    await proxy.start()
    faults = Faults()
    # The test's own connections go straight to RabbitMQ, with time to ride out an alarm.
    direct = dataclasses.replace(settings, publish_timeout=60.0)
    async with BrokerSession.open(direct, name="leveret-soak") as session:
        fleet = Fleet(through(settings, proxy), worker_processes)
        try:
            with fleet.diagnosed(faults):
                for queue_name in QUEUES:
                    await session.router.ensure_queue(queue_name)
                for _ in range(WORKERS):
                    fleet.start()
                await fleet.until_full_strength(session, "start")
                assert not fleet.problems, fleet.problems
                producer = Producer(store, session)
                load = Load(plans, producer, JobAdmin(producer), rng)
                began = time.monotonic()
                async with asyncio.TaskGroup() as group:
                    group.create_task(load.submit(began))
                    group.create_task(load.cancel_when_running())
                    until = began + SIZE.seconds
                    group.create_task(inject_faults(fleet, proxy, session, rng, faults, until))
                loaded = time.monotonic()
                await until_all_ended(store, len(plans))
                await until_queues_empty(session)
                await fleet.stop()  # every execution ends and logs before the log is read
                settled = time.monotonic()
        finally:
            fleet.close()
            await proxy.close()
        dlq = await drain_dead_letters(session)
    jobs = {job.id: job for job in (await store.list(JobQuery(limit=len(plans) + 1))).jobs}
    runs = read_executions(log_path)
    verdict = judge(plans, jobs, runs, dlq)
    report = summary(
        plans, jobs, runs, dlq, verdict, faults, fleet, proxy, (loaded - began, settled - loaded)
    )
    with capsys.disabled():
        print(f"\n{report}")

    failures = [f"fleet: {problem}" for problem in fleet.problems]
    failures += [
        f"{check}: {len(found)} job(s), e.g. {found[:10]}"
        for check, found in verdict.problems.items()
        if found
    ]
    suspects = [p[:36] for found in verdict.problems.values() for p in found][:5]
    with fleet.diagnosed(faults, suspects), explained(suspects, jobs, runs):
        assert len(jobs) == len(plans)
        assert min(faults.kills, faults.terms, faults.cuts) > 0, faults
        assert proxy.connections >= 2 * fleet.processes + faults.cuts  # the cuts reconnected
        assert not failures, "\n".join(failures)
        # The counts by state are the counts the handlers' executions (and the cancels) make.
        assert verdict.derived == Counter(j.state for j in jobs.values())


@contextmanager
def explained(job_ids: list[str], jobs: dict[str, Job], runs: list[Execution]) -> Iterator[None]:
    """On failure, attach what the store and the execution log say about `job_ids`."""
    try:
        yield
    except BaseException as exc:
        for job_id in job_ids:
            job = jobs.get(job_id)
            if job is not None:
                times = {
                    k: _clock(v.timestamp())
                    for k, v in (("created", job.created_at), ("started", job.started_at))
                    if v is not None
                }
                ended = _clock(job.completed_at.timestamp()) if job.completed_at else None
                exc.add_note(
                    f"job {job_id}: {job.type} {job.queue} {job.state} attempt {job.attempt}/"
                    f"{job.max_attempts} worker {job.worker} {times} ended {ended} "
                    f"{job.error_category}: {job.last_error!r}"
                )
            for run in (r for r in runs if r.job == job_id):
                end = _clock(run.end) if run.end is not None else None
                exc.add_note(
                    f"  ran attempt {run.attempt} pid {run.pid} from {_clock(run.start)} "
                    f"to {end}: {run.outcome}"
                )
        raise
