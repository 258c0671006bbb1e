"""The store contract: conditional transitions and updates, deletes, and what a change
moves besides the state (queue, idempotency key, dependencies)."""

from __future__ import annotations

import asyncio

import pytest

from leveret.jobs.errors import DuplicateJob
from leveret.jobs.model import new_job_id
from leveret.jobs.store import JobQuery, JobStore
from tests.unit.store.sample_jobs import SCHEDULED, T0, S, create_all, ids, make_job

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
