"""The soak's load: the plans submitted in waves, their cancels, and the wait for its end."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter

from leveret.broker import BrokerSession, Producer, queue_depth
from leveret.broker.actions import JobActions
from leveret.jobs import ACTIVE_STATES, TERMINAL_STATES, JobState
from leveret.jobs.errors import WrongState
from leveret.jobs.store import JobQuery, SQLiteStore
from leveret.topology import DELAY_TIERS_MS
from tests.conditions import eventually
from tests.faults.soak_plan import CANCELLED, QUEUES, SIZE, Fate, Plan


class Load:
    """Submits the plans in waves over the soak's seconds and makes the cancels happen."""

    def __init__(
        self, plans: list[Plan], producer: Producer, actions: JobActions, rng: random.Random
    ) -> None:
        self.plans = plans
        self.by_id: dict[str, Plan] = {}
        self.done = asyncio.Event()
        self._producer = producer
        self._actions = actions
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
            cancelled = await self._actions.cancel(plan.job_id, "soak")
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
