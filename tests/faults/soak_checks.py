"""The soak's end-of-run checks, its printed summary and its failure notes."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from leveret.jobs import DLQ_STATES, Job, JobState
from tests.faults.soak_fleet import CONCURRENCY, WORKERS, Faults, Fleet, clock
from tests.faults.soak_handlers import Execution
from tests.faults.soak_plan import CANCELLED, QUEUES, SIZE, TYPES, Fate, Plan
from tests.proxy import TcpProxy

# A store write reads the clock, then waits for SQLite's write lock: two writes racing (a
# cancel and a redelivery's takeover) may commit in the other order than their timestamps.
ENGINE_SKEW = 0.1
# Between the engine moving a job to running and its handler's first line, a busy worker's
# event loop may run other work for a while.
HANDLER_LAG = 0.5


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
                    k: clock(v.timestamp())
                    for k, v in (("created", job.created_at), ("started", job.started_at))
                    if v is not None
                }
                ended = clock(job.completed_at.timestamp()) if job.completed_at else None
                exc.add_note(
                    f"job {job_id}: {job.type} {job.queue} {job.state} attempt {job.attempt}/"
                    f"{job.max_attempts} worker {job.worker} {times} ended {ended} "
                    f"{job.error_category}: {job.last_error!r}"
                )
            for run in (r for r in runs if r.job == job_id):
                end = clock(run.end) if run.end is not None else None
                exc.add_note(
                    f"  ran attempt {run.attempt} pid {run.pid} from {clock(run.start)} "
                    f"to {end}: {run.outcome}"
                )
        raise
