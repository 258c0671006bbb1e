"""The store contract: creating jobs, one or many at once, and finding them by id or by
idempotency key."""

from __future__ import annotations

import pytest

from leveret.jobs.errors import DuplicateJob
from leveret.jobs.model import new_job_id
from leveret.jobs.store import JobStore
from tests.unit.store.sample_jobs import create_all, make_job


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
