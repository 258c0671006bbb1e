"""The JobStore contract runs against every store through the `store` fixture.

Backends: SQLite (a temp file per test); MongoDB on mongomock-motor, an in-process stand-in
that is not a real MongoDB; and a real MongoDB when LEVERET_TEST_MONGODB_URL is set (a
database unique to the test run, dropped after each test). The session header says which.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from leveret.jobs.store import JobStore, SQLiteStore
from leveret.jobs.store.mongo import MongoStore

MONGODB_URL_ENV = "LEVERET_TEST_MONGODB_URL"
SQLITE = "sqlite"
STAND_IN = "stand-in"
REAL_MONGODB = "mongodb"
STAND_IN_ID = "mongodb: in-process stand-in (mongomock-motor), not a real MongoDB"
REAL_ID = "mongodb: real MongoDB at LEVERET_TEST_MONGODB_URL"


def _backends() -> list[Any]:
    params = [pytest.param(SQLITE, id=SQLITE), pytest.param(STAND_IN, id=STAND_IN_ID)]
    if os.environ.get(MONGODB_URL_ENV):
        params.append(pytest.param(REAL_MONGODB, id=REAL_ID))
    return params


@pytest.fixture(scope="session")
def run_database() -> str:
    """The real MongoDB database this test run uses (and drops)."""
    return f"leveret_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """Which store `store` is: "sqlite", "stand-in" or "mongodb"."""
    name: str = request.param
    return name


@pytest.fixture
async def store(backend: str, tmp_path: Path, run_database: str) -> AsyncIterator[JobStore]:
    """An open, empty store of each kind."""
    if backend == SQLITE:
        sqlite = SQLiteStore(tmp_path / "leveret.db")
        await sqlite.open()
        yield sqlite
        await sqlite.close()
    elif backend == STAND_IN:
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
