"""The JobStore contract: one suite, run against every store through the `store` fixture.

Backends: SQLite (a temp file per test); MongoDB on mongomock-motor, an in-process stand-in
that is not a real MongoDB; and a real MongoDB when LEVERET_TEST_MONGODB_URL is set (a
database unique to the test run, dropped after each test). The session header says which.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from leveret.jobs.backoff import Backoff, BackoffStrategy
from leveret.jobs.errors import ConfigurationError, DuplicateJob, StoreUnavailable
from leveret.jobs.model import Job, new_job_id
from leveret.jobs.states import JobState
from leveret.jobs.store import JobQuery, JobStore, SQLiteStore
from leveret.jobs.store.mongo import MongoStore

S = JobState
SCHEDULED = frozenset({S.SCHEDULED})
REPO_ROOT = Path(__file__).resolve().parents[2]
MONGODB_URL_ENV = "LEVERET_TEST_MONGODB_URL"
STAND_IN_ID = "mongodb: in-process stand-in (mongomock-motor), not a real MongoDB"
REAL_ID = "mongodb: real MongoDB at LEVERET_TEST_MONGODB_URL"

# Millisecond times: MongoDB keeps no finer, and the round trip must compare equal.
T0 = datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)


def _backends() -> list[Any]:
    params = [pytest.param("sqlite", id="sqlite"), pytest.param("stand-in", id=STAND_IN_ID)]
    if os.environ.get(MONGODB_URL_ENV):
        params.append(pytest.param("mongodb", id=REAL_ID))
    return params


@pytest.fixture(scope="session")
def run_database() -> str:
    """The real MongoDB database this test run uses (and drops)."""
    return f"leveret_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=_backends())
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, run_database: str
) -> AsyncIterator[JobStore]:
    """An open, empty store of each kind."""
    backend: str = request.param
    if backend == "sqlite":
        sqlite = SQLiteStore(tmp_path / "leveret.db")
        await sqlite.open()
        yield sqlite
        await sqlite.close()
    elif backend == "stand-in":
        # No tz_aware: the stand-in then hands back naive datetimes, which the store fixes.
        # Duck-typed: mongomock-motor speaks Motor's API, which matches PyMongo's async one
        # everywhere the store looks except aggregate() (see MongoStore.counts).
        database = cast("AsyncDatabase[dict[str, Any]]", AsyncMongoMockClient()["leveret"])
        stand_in = MongoStore(database)
        await stand_in.open()
        yield stand_in
        await stand_in.close()
    else:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            os.environ[MONGODB_URL_ENV], tz_aware=True
        )
        try:
            mongo = MongoStore(client[run_database])
            await mongo.open()
            yield mongo
            await mongo.close()
        finally:
            await client.drop_database(run_database)
            await client.close()


def make_job(**fields: Any) -> Job:
    """A scheduled job with millisecond times, `fields` overriding."""
    values: dict[str, Any] = {
        "id": new_job_id(),
        "type": "email.send",
        "state": S.SCHEDULED,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    return Job(**values)


async def create_all(store: JobStore, count: int, **fields: Any) -> list[Job]:
    """`count` jobs created one after another (so in id order, oldest first)."""
    return [await store.create(make_job(**fields)) for _ in range(count)]


def ids(jobs: list[Job]) -> list[str]:
    return [job.id for job in jobs]


# --- create, get, idempotency keys ---------------------------------------------------------


async def test_create_then_get_returns_the_job(store: JobStore) -> None:
    job = make_job(payload={"to": "a@example.com"})
    assert await store.create(job) == job
    assert await store.get(job.id) == job


async def test_get_missing_job_is_none(store: JobStore) -> None:
    await store.create(make_job())
    assert await store.get(new_job_id()) is None


async def test_duplicate_id_is_refused_and_keeps_the_first(store: JobStore) -> None:
    first = await store.create(make_job(payload=1))
    with pytest.raises(DuplicateJob) as raised:
        await store.create(make_job(id=first.id, payload=2))
    assert raised.value.job_id == first.id
    assert raised.value.idempotency_key is None
    assert await store.get(first.id) == first


async def test_duplicate_idempotency_key_is_refused(store: JobStore) -> None:
    first = await store.create(make_job(idempotency_key="order-42"))
    second = make_job(idempotency_key="order-42")
    with pytest.raises(DuplicateJob) as raised:
        await store.create(second)
    assert raised.value.job_id == second.id
    assert raised.value.idempotency_key == "order-42"
    assert await store.get(second.id) is None
    assert await store.get(first.id) == first


async def test_jobs_without_idempotency_key_do_not_clash(store: JobStore) -> None:
    jobs = await create_all(store, 3)
    assert [await store.get(job.id) for job in jobs] == jobs


async def test_find_by_idempotency_key(store: JobStore) -> None:
    keyed = await store.create(make_job(idempotency_key="k-1"))
    await store.create(make_job(idempotency_key="k-2"))
    await store.create(make_job())
    assert await store.find_by_idempotency_key("k-1") == keyed
    assert await store.find_by_idempotency_key("k-3") is None


# --- create_many ---------------------------------------------------------------------------


async def test_create_many_stores_every_job(store: JobStore) -> None:
    jobs = [make_job(payload=i) for i in range(5)]
    assert await store.create_many(jobs) == jobs
    assert [await store.get(job.id) for job in jobs] == jobs


async def test_create_many_with_a_clashing_id_stores_none(store: JobStore) -> None:
    existing = await store.create(make_job())
    batch = [make_job(), make_job(), make_job(id=existing.id), make_job()]
    with pytest.raises(DuplicateJob) as raised:
        await store.create_many(batch)
    assert raised.value.job_id == existing.id
    assert [await store.get(job.id) for job in batch if job.id != existing.id] == [None] * 3
    assert await store.get(existing.id) == existing


async def test_create_many_with_a_clashing_key_stores_none(store: JobStore) -> None:
    await store.create(make_job(idempotency_key="taken"))
    batch = [make_job(), make_job(idempotency_key="taken"), make_job()]
    with pytest.raises(DuplicateJob) as raised:
        await store.create_many(batch)
    assert raised.value.job_id == batch[1].id
    assert raised.value.idempotency_key == "taken"
    assert [await store.get(job.id) for job in batch] == [None] * 3


async def test_create_many_with_a_clash_inside_the_batch_stores_none(store: JobStore) -> None:
    batch = [make_job(idempotency_key="same"), make_job(), make_job(idempotency_key="same")]
    with pytest.raises(DuplicateJob):
        await store.create_many(batch)
    assert [await store.get(job.id) for job in batch] == [None] * 3
    assert await store.find_by_idempotency_key("same") is None


# --- transition ----------------------------------------------------------------------------


async def test_transition_moves_and_applies_changes_in_one_write(store: JobStore) -> None:
    job = await store.create(make_job())
    moved = await store.transition(
        job.id, S.RUNNING, attempt=0, changes={"attempt": 1, "worker": "w1", "started_at": T0}
    )
    assert moved is not None
    assert (moved.state, moved.attempt, moved.worker, moved.started_at) == (
        S.RUNNING,
        1,
        "w1",
        T0,
    )
    assert moved.updated_at > job.updated_at
    assert moved.created_at == job.created_at
    assert await store.get(job.id) == moved


async def test_transition_from_a_state_not_allowed_is_refused(store: JobStore) -> None:
    job = await store.create(make_job(state=S.COMPLETED))
    assert await store.transition(job.id, S.RUNNING, changes={"worker": "w1"}) is None
    assert await store.get(job.id) == job


async def test_transition_honours_explicit_sources(store: JobStore) -> None:
    job = await store.create(make_job(state=S.DELAYED))
    assert await store.transition(job.id, S.RUNNING, sources=frozenset({S.RETRYING})) is None
    assert await store.get(job.id) == job
    moved = await store.transition(job.id, S.RUNNING, sources=frozenset({S.DELAYED, S.RETRYING}))
    assert moved is not None
    assert moved.state is S.RUNNING


async def test_transition_with_wrong_attempt_is_refused(store: JobStore) -> None:
    job = await store.create(make_job(state=S.RUNNING, attempt=2))
    assert await store.transition(job.id, S.COMPLETED, attempt=1, changes={"result": 1}) is None
    assert await store.get(job.id) == job
    done = await store.transition(job.id, S.COMPLETED, attempt=2, changes={"result": 1})
    assert done is not None
    assert (done.state, done.result) == (S.COMPLETED, 1)


async def test_transition_of_missing_job_is_none(store: JobStore) -> None:
    assert await store.transition(new_job_id(), S.RUNNING) is None


async def test_transition_request_outside_the_table_raises(store: JobStore) -> None:
    job = await store.create(make_job())
    with pytest.raises(ValueError, match="illegal move"):
        await store.transition(job.id, S.COMPLETED, sources=frozenset({S.SCHEDULED}))
    with pytest.raises(ValueError, match="cannot change"):
        await store.transition(job.id, S.RUNNING, changes={"created_at": T0})
    assert await store.get(job.id) == job


async def test_only_one_of_many_racing_transitions_wins(store: JobStore) -> None:
    job = await store.create(make_job())
    claims = [
        store.transition(job.id, S.RUNNING, sources=SCHEDULED, changes={"worker": f"w{i}"})
        for i in range(20)
    ]
    outcomes = await asyncio.gather(*claims)
    winners = [moved for moved in outcomes if moved is not None]
    assert len(winners) == 1
    assert await store.get(job.id) == winners[0]


# --- update and delete ---------------------------------------------------------------------


async def test_update_applies_changes_only_in_the_given_state(store: JobStore) -> None:
    job = await store.create(make_job(state=S.RUNNING, attempt=1))
    assert not await store.update(job.id, {"progress": 0.9}, state=S.SCHEDULED)
    assert not await store.update(job.id, {"progress": 0.9}, state=S.RUNNING, attempt=2)
    assert await store.get(job.id) == job
    changes = {"progress": 0.5, "progress_message": "half", "checkpoint": {"page": 3}}
    assert await store.update(job.id, changes, state=S.RUNNING, attempt=1)
    stored = await store.get(job.id)
    assert stored is not None
    assert (stored.progress, stored.progress_message, stored.checkpoint) == (
        0.5,
        "half",
        {"page": 3},
    )
    assert stored.state is S.RUNNING
    assert stored.updated_at > job.updated_at


async def test_update_of_missing_job_is_false(store: JobStore) -> None:
    assert not await store.update(new_job_id(), {"progress": 0.1}, state=S.RUNNING)


async def test_update_of_an_immutable_field_raises(store: JobStore) -> None:
    job = await store.create(make_job())
    with pytest.raises(ValueError, match="cannot change"):
        await store.update(job.id, {"id": "other"}, state=S.SCHEDULED)
    with pytest.raises(ValueError, match="cannot change"):
        await store.update(job.id, {"state": S.RUNNING}, state=S.SCHEDULED)


async def test_delete(store: JobStore) -> None:
    kept = await store.create(make_job())
    gone = await store.create(make_job(depends_on=[kept.id]))
    assert await store.delete(gone.id)
    assert await store.get(gone.id) is None
    assert not await store.delete(gone.id)
    assert await store.dependents(kept.id) == []
    assert ids((await store.list(JobQuery())).jobs) == [kept.id]


# --- what a change moves, beyond the state ------------------------------------------------


async def test_changed_queue_moves_the_job_in_listings_and_counts(store: JobStore) -> None:
    job = await store.create(make_job(queue="low"))
    assert await store.update(job.id, {"queue": "high"}, state=S.SCHEDULED)
    assert ids((await store.list(JobQuery(queue="high"))).jobs) == [job.id]
    assert (await store.list(JobQuery(queue="low"))).jobs == []
    assert await store.counts() == {"high": {S.SCHEDULED: 1}}


async def test_changed_idempotency_key_is_found_by_the_new_key(store: JobStore) -> None:
    job = await store.create(make_job(idempotency_key="old"))
    moved = await store.transition(job.id, S.RUNNING, changes={"idempotency_key": "new"})
    assert moved is not None
    assert await store.find_by_idempotency_key("new") == moved
    assert await store.find_by_idempotency_key("old") is None
    reuse = await store.create(make_job(idempotency_key="old"))  # the old key is free again
    assert await store.find_by_idempotency_key("old") == reuse


async def test_change_to_a_taken_idempotency_key_is_refused(store: JobStore) -> None:
    await store.create(make_job(idempotency_key="taken"))
    job = await store.create(make_job(idempotency_key="mine"))
    with pytest.raises(DuplicateJob) as raised:
        await store.update(job.id, {"idempotency_key": "taken"}, state=S.SCHEDULED)
    assert raised.value.job_id == job.id
    assert await store.get(job.id) == job


async def test_cleared_idempotency_key_leaves_no_clash(store: JobStore) -> None:
    one = await store.create(make_job(idempotency_key="a"))
    two = await store.create(make_job(idempotency_key="b"))
    for job in (one, two):
        assert await store.update(job.id, {"idempotency_key": None}, state=S.SCHEDULED)
    assert await store.find_by_idempotency_key("a") is None
    stored = await store.get(one.id)
    assert stored is not None
    assert stored.idempotency_key is None


async def test_changed_depends_on_changes_dependents(store: JobStore) -> None:
    first, second = await create_all(store, 2)
    job = await store.create(make_job(state=S.PENDING, depends_on=[first.id]))
    assert await store.update(job.id, {"depends_on": [second.id]}, state=S.PENDING)
    assert await store.dependents(first.id) == []
    assert ids(await store.dependents(second.id)) == [job.id]


# --- list ----------------------------------------------------------------------------------


async def test_list_is_newest_first(store: JobStore) -> None:
    jobs = await create_all(store, 5)
    page = await store.list(JobQuery())
    assert ids(page.jobs) == ids(jobs)[::-1]
    assert page.next_cursor is None


async def test_list_filters_by_state_set(store: JobStore) -> None:
    running = await store.create(make_job(state=S.RUNNING))
    failed = await store.create(make_job(state=S.FAILED))
    await store.create(make_job(state=S.COMPLETED))
    page = await store.list(JobQuery(states=frozenset({S.RUNNING, S.FAILED})))
    assert ids(page.jobs) == [failed.id, running.id]
    assert (await store.list(JobQuery(states=frozenset({S.PENDING})))).jobs == []


async def test_list_filters_by_type_and_queue(store: JobStore) -> None:
    a = await store.create(make_job(type="email.send", queue="mail"))
    b = await store.create(make_job(type="report.build", queue="mail"))
    c = await store.create(make_job(type="email.send", queue="bulk"))
    assert ids((await store.list(JobQuery(type="email.send"))).jobs) == [c.id, a.id]
    assert ids((await store.list(JobQuery(queue="mail"))).jobs) == [b.id, a.id]
    both = JobQuery(type="email.send", queue="mail", states=frozenset({S.SCHEDULED}))
    assert ids((await store.list(both)).jobs) == [a.id]


async def test_list_filters_by_tags(store: JobStore) -> None:
    eu = await store.create(make_job(tags={"region": "eu", "tier": "gold"}))
    eu_free = await store.create(make_job(tags={"region": "eu", "tier": "free"}))
    await store.create(make_job(tags={"region": "us"}))
    await store.create(make_job())
    assert ids((await store.list(JobQuery(tags={"region": "eu"}))).jobs) == [eu_free.id, eu.id]
    gold = JobQuery(tags={"region": "eu", "tier": "gold"})
    assert ids((await store.list(gold)).jobs) == [eu.id]
    assert (await store.list(JobQuery(tags={"region": "asia"}))).jobs == []


async def test_list_limit_and_cursor(store: JobStore) -> None:
    jobs = await create_all(store, 3)
    first = await store.list(JobQuery(limit=2))
    assert ids(first.jobs) == [jobs[2].id, jobs[1].id]
    assert first.next_cursor == jobs[1].id
    rest = await store.list(JobQuery(limit=2, cursor=first.next_cursor))
    assert ids(rest.jobs) == [jobs[0].id]
    assert rest.next_cursor is None
    exact = await store.list(JobQuery(limit=3))
    assert len(exact.jobs) == 3
    assert exact.next_cursor is None


@pytest.mark.parametrize("limit", [1, 4, 7])
async def test_paging_through_everything_has_no_gaps_or_repeats(
    store: JobStore, limit: int
) -> None:
    jobs = await create_all(store, 13, queue="q1")
    await create_all(store, 4, queue="q2")  # interleaved noise the filter must skip
    jobs += await create_all(store, 6, queue="q1")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await store.list(JobQuery(queue="q1", limit=limit, cursor=cursor))
        assert len(page.jobs) <= limit
        seen += ids(page.jobs)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids(jobs)[::-1]
    assert pages == -(-len(jobs) // limit)


# --- counts and dependents -----------------------------------------------------------------


async def test_counts_by_queue_and_state(store: JobStore) -> None:
    assert await store.counts() == {}
    await create_all(store, 3, queue="mail")
    await create_all(store, 2, queue="mail", state=S.FAILED)
    await create_all(store, 1, queue="bulk", state=S.RUNNING)
    assert await store.counts() == {
        "mail": {S.SCHEDULED: 3, S.FAILED: 2},
        "bulk": {S.RUNNING: 1},
    }


async def test_counts_follow_transitions(store: JobStore) -> None:
    job, _ = await create_all(store, 2)
    await store.transition(job.id, S.RUNNING)
    assert await store.counts() == {"default": {S.SCHEDULED: 1, S.RUNNING: 1}}


async def test_dependents(store: JobStore) -> None:
    parent, other = await create_all(store, 2)
    first = await store.create(make_job(state=S.PENDING, depends_on=[parent.id]))
    await store.create(make_job(state=S.PENDING, depends_on=[other.id]))
    both = await store.create(make_job(state=S.PENDING, depends_on=[other.id, parent.id]))
    assert ids(await store.dependents(parent.id)) == [first.id, both.id]
    assert await store.dependents(first.id) == []


async def test_dependents_of_an_ended_job_follow_what_was_submitted_since(
    store: JobStore,
) -> None:
    """A store may remember that a job had no dependents when it ended; a dependent added
    afterwards, or before the end, is still found."""
    lonely, waited_on = await create_all(store, 2)
    child = await store.create(make_job(state=S.PENDING, depends_on=[waited_on.id]))
    for job in (lonely, waited_on):
        assert await store.transition(job.id, S.CANCELLED) is not None
    assert await store.dependents(lonely.id) == []
    assert ids(await store.dependents(waited_on.id)) == [child.id]
    late = await store.create(make_job(state=S.PENDING, depends_on=[lonely.id]))
    assert ids(await store.dependents(lonely.id)) == [late.id]


# --- values --------------------------------------------------------------------------------


async def test_every_field_round_trips(store: JobStore) -> None:
    job = make_job(
        state=S.RETRYING,
        queue="reports",
        priority=4,
        payload={"user": {"id": 7, "roles": ["a", "b"]}, "ratio": 0.25, "ok": True, "n": None},
        attempt=2,
        max_attempts=9,
        backoff=Backoff(strategy=BackoffStrategy.LINEAR, initial=2.5, jitter=False),
        timeout=30.5,
        scheduled_at=T0 + timedelta(minutes=5),
        depends_on=[new_job_id(), new_job_id()],
        idempotency_key="idem",
        correlation_id="corr",
        tags={"region": "eu", "tenant": "acme"},
        progress=0.75,
        progress_message="most",
        checkpoint=[1, {"cursor": "abc"}],
        result={"rows": [[1, 2], [3, 4]]},
        last_error="boom",
        error_category="transient",
        worker="host:123",
        started_at=T0 + timedelta(seconds=1),
        completed_at=None,
    )
    await store.create(job)
    stored = await store.get(job.id)
    assert stored == job
    assert stored is not None
    assert stored.backoff == Backoff(strategy=BackoffStrategy.LINEAR, initial=2.5, jitter=False)
    for moment in (stored.created_at, stored.updated_at, stored.scheduled_at, stored.started_at):
        assert moment is not None
        assert moment.utcoffset() == timedelta(0)


async def test_values_in_changes_round_trip(store: JobStore) -> None:
    job = await store.create(make_job(state=S.RUNNING, attempt=1))
    later = T0 + timedelta(hours=1)
    done = await store.transition(
        job.id,
        S.COMPLETED,
        changes={"result": {"a": [1, {"b": None}]}, "completed_at": later, "tags": {"x": "y"}},
    )
    assert done is not None
    stored = await store.get(job.id)
    assert stored == done
    assert stored.result == {"a": [1, {"b": None}]}
    assert stored.completed_at == later
    assert stored.completed_at.utcoffset() == timedelta(0)
    assert stored.updated_at.utcoffset() == timedelta(0)
    assert ids((await store.list(JobQuery(tags={"x": "y"}))).jobs) == [job.id]


# --- SQLite only: two processes on one file ------------------------------------------------

_RACER = """
import asyncio, json, sys
from leveret.jobs.states import JobState
from leveret.jobs.store import SQLiteStore

async def race(path, name, ids):
    store = SQLiteStore(path)
    await store.open()
    print("ready", flush=True)
    sys.stdin.readline()  # the parent says go once both are ready
    won = []
    for start in range(0, len(ids), 20):  # waves of 20 at once, so the two writers interleave
        moves = [
            store.transition(i, JobState.RUNNING, sources=frozenset({JobState.SCHEDULED}),
                             changes={"worker": name})
            for i in ids[start:start + 20]
        ]
        won += [m.id for m in await asyncio.gather(*moves) if m is not None]
    await store.close()
    print(json.dumps(won), flush=True)

asyncio.run(race(sys.argv[1], sys.argv[2], json.loads(sys.stdin.readline())))
"""


async def test_sqlite_two_processes_racing_for_the_same_jobs(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    store = SQLiteStore(path)
    await store.open()
    racers: list[asyncio.subprocess.Process] = []
    try:
        jobs = await store.create_many([make_job() for _ in range(200)])
        order = ids(jobs)
        for name in ("one", "two"):
            racer = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _RACER,
                str(path),
                name,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=REPO_ROOT,
            )
            racers.append(racer)
            # Both go through the jobs in the same order: a race for every one of them.
            await _say(racer, json.dumps(order))
        for racer in racers:
            assert racer.stdout is not None
            assert await racer.stdout.readline() == b"ready\n"
        for racer in racers:
            await _say(racer, "go")
        outputs = [await racer.communicate() for racer in racers]
        assert [racer.returncode for racer in racers] == [0, 0]
        won: dict[str, list[str]] = {
            name: json.loads(out) for name, (out, _) in zip(("one", "two"), outputs, strict=True)
        }
        assert len(won["one"]) + len(won["two"]) == len(jobs)  # one win per job, no more
        assert set(won["one"]) | set(won["two"]) == set(order)  # and none left unclaimed
        for job in jobs:
            stored = await store.get(job.id)
            assert stored is not None
            assert stored.state is S.RUNNING
            assert stored.id in won[stored.worker or ""]
    finally:
        for racer in racers:
            if racer.returncode is None:
                racer.kill()
                await racer.wait()
        await store.close()


async def _say(racer: asyncio.subprocess.Process, line: str) -> None:
    assert racer.stdin is not None
    racer.stdin.write(line.encode() + b"\n")
    await racer.stdin.drain()


# --- MongoDB only: URLs and an unreachable server ------------------------------------------


async def test_mongo_from_url_takes_the_database_from_the_path() -> None:
    named = MongoStore.from_url("mongodb://127.0.0.1:1/jobsdb")
    default = MongoStore.from_url("mongodb://127.0.0.1:1/?appname=x")
    try:
        assert named.database.name == "jobsdb"
        assert default.database.name == "leveret"
    finally:
        await named.close()
        await default.close()


async def test_mongo_documents_leave_out_a_missing_idempotency_key() -> None:
    # A sparse index skips absent fields but indexes nulls on a real MongoDB (the stand-in
    # skips both), so only an absent field lets many jobs go without a key.
    database = cast("AsyncDatabase[dict[str, Any]]", AsyncMongoMockClient()["leveret"])
    store = MongoStore(database)
    await store.open()
    plain = await store.create(make_job())
    keyed = await store.create(make_job(idempotency_key="k"))
    assert await store.update(keyed.id, {"idempotency_key": None}, state=S.SCHEDULED)
    for job in (plain, keyed):
        doc = await database["jobs"].find_one({"_id": job.id})
        assert doc is not None
        assert "idempotency_key" not in doc
        assert doc["state"] == "scheduled"


@pytest.mark.parametrize(
    "url", ["mongodb://leveret:s3cret@/jobsdb", "mongodb://leveret:s3cret@host:port/jobsdb"]
)
def test_mongo_bad_url_is_a_configuration_error_with_password_masked(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        MongoStore.from_url(url)
    assert "s3cret" not in str(raised.value)
    assert "leveret:***@" in str(raised.value)


async def test_mongo_unreachable_is_store_unavailable_with_password_masked(
    tmp_path: Path,
) -> None:
    # A Unix socket nobody listens on: PyMongo leaks a TCP socket whose connect is still in
    # flight when the client closes, and a refused Unix connect fails before any wait.
    nowhere = quote(str(tmp_path / "mongod.sock"), safe="")
    url = f"mongodb://leveret:s3cret@{nowhere}/jobsdb?serverSelectionTimeoutMS=100"
    store = MongoStore.from_url(url)
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.open()
        with pytest.raises(StoreUnavailable):
            await store.get(new_job_id())
    finally:
        await store.close()
    message = str(raised.value)
    assert "s3cret" not in message
    assert f"leveret:***@{nowhere}" in message
    assert "ServerSelectionTimeoutError" in message
