"""The store contract: listings (filters, newest first, cursor pages), counts by queue and
state, and the dependents of a job."""

from __future__ import annotations

import pytest

from leveret.jobs.store import JobQuery, JobStore
from tests.unit.store.sample_jobs import S, create_all, ids, make_job

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
