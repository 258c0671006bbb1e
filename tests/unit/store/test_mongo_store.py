"""The MongoDB store: URLs, documents without an idempotency key, an unreachable server."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo.asynchronous.database import AsyncDatabase

from leveret.jobs.errors import ConfigurationError, StoreUnavailable
from leveret.jobs.model import new_job_id
from leveret.jobs.store.mongo import MongoStore
from tests.unit.store.sample_jobs import S, make_job


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
