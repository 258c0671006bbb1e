"""The store contract: `storage_bytes`, the size the store takes on disk (the API's
`stats.queue.storage_bytes`), grows with what is stored, or is 0 where a store cannot tell."""

from __future__ import annotations

import os

from leveret.jobs.store import JobStore
from tests.unit.store.conftest import SQLITE, STAND_IN
from tests.unit.store.sample_jobs import make_job

JOBS = 50
PAYLOAD_BYTES = 4096


async def test_storage_bytes_grow_with_what_is_stored(store: JobStore, backend: str) -> None:
    empty = await store.storage_bytes()
    # Random bytes as hex: a compressing store (MongoDB's WiredTiger) cannot shrink them away.
    await store.create_many(
        [make_job(payload=os.urandom(PAYLOAD_BYTES // 2).hex()) for _ in range(JOBS)]
    )
    full = await store.storage_bytes()

    assert isinstance(empty, int)
    assert isinstance(full, int)
    if backend == STAND_IN:  # mongomock keeps no files and has no dbStats
        assert empty == full == 0
    elif backend == SQLITE:  # the WAL counts: the writes may not be in the main file yet
        assert full >= empty + JOBS * PAYLOAD_BYTES
    else:  # WiredTiger reports its sizes lazily, but never none for a database in use
        assert full > 0
