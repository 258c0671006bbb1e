"""The store contract: every field of a job comes back as it was stored."""

from __future__ import annotations

from datetime import timedelta

from leveret.jobs.backoff import Backoff, BackoffStrategy
from leveret.jobs.model import new_job_id
from leveret.jobs.store import JobQuery, JobStore
from tests.unit.store.sample_jobs import T0, S, ids, make_job


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
