"""The production job store: one MongoDB collection, on PyMongo's async API.

A job is one document whose `_id` is the job id. Every state change is one conditional
`find_one_and_update`, so MongoDB's single-document atomicity does what `BEGIN IMMEDIATE`
does for SQLite: of two workers racing for the same job, exactly one matches.
"""

from __future__ import annotations

import builtins
import inspect
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError, OperationFailure
from pymongo.errors import ConfigurationError as MongoConfigurationError

from leveret.jobs.errors import ConfigurationError, DuplicateJob, StoreError, StoreUnavailable
from leveret.jobs.model import Job, utcnow
from leveret.jobs.settings import mask_url
from leveret.jobs.states import JobState
from leveret.jobs.store.protocol import JobPage, JobQuery, check_changes, check_transition

__all__ = ["MongoStore"]

log = logging.getLogger(__name__)

_Document = dict[str, Any]

SERVER_SELECTION_TIMEOUT_MS = 5_000
DEFAULT_DATABASE = "leveret"  # when the URL names none
COLLECTION = "jobs"
_DUPLICATE_KEY = 11000  # MongoDB's error code for a unique index violation

_INDEXES = [
    # Sparse, and documents leave the field out when it is None: a sparse index skips absent
    # fields (not nulls), so jobs without a key do not clash with each other.
    IndexModel([("idempotency_key", ASCENDING)], name="idempotency_key", unique=True, sparse=True),
    IndexModel([("state", ASCENDING), ("_id", ASCENDING)], name="state_id"),
    IndexModel(
        [("queue", ASCENDING), ("state", ASCENDING), ("_id", ASCENDING)], name="queue_state_id"
    ),
    IndexModel([("type", ASCENDING), ("_id", ASCENDING)], name="type_id"),
    IndexModel([("depends_on", ASCENDING)], name="depends_on"),
]


class MongoStore:
    """The JobStore on a MongoDB database (see the module docstring)."""

    def __init__(self, database: AsyncDatabase[_Document], *, url: str | None = None) -> None:
        """A store on `database` (any async handle with PyMongo's API); `url` names it in
        errors, with its password masked."""
        self.database = database
        self.url = mask_url(url) if url else f"mongodb database {database.name!r}"
        self._jobs: AsyncCollection[_Document] = database[COLLECTION]
        self._client: AsyncMongoClient[_Document] | None = None  # set when the store owns it

    @classmethod
    def from_url(cls, url: str) -> MongoStore:
        """A store for `mongodb://[user:password@]host[:port]/database` (default database:
        "leveret"); it owns its client and closes it in `close()`."""
        options: dict[str, Any] = {"tz_aware": True}
        if "serverselectiontimeoutms" not in url.lower():
            # PyMongo waits 30 s for a server by default: too long to say it is down.
            options["serverSelectionTimeoutMS"] = SERVER_SELECTION_TIMEOUT_MS
        try:
            client: AsyncMongoClient[_Document] = AsyncMongoClient(url, **options)
        except (MongoConfigurationError, ValueError) as exc:  # ValueError: e.g. a bad port
            raise ConfigurationError(f"store URL {mask_url(url)}: {exc}") from None
        store = cls(client.get_default_database(DEFAULT_DATABASE), url=url)
        store._client = client
        return store

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn the driver's connection errors into StoreUnavailable."""
        try:
            yield
        except ConnectionFailure as exc:  # ServerSelectionTimeoutError and AutoReconnect too
            # The topology description that follows is long and says nothing more.
            detail = str(exc).partition(", Topology Description")[0]
            raise StoreUnavailable(self.url, f"{type(exc).__name__}: {detail}") from exc

    async def open(self) -> None:
        with self._reachable():
            await self._jobs.create_indexes(_INDEXES)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def create(self, job: Job) -> Job:
        with self._reachable():
            try:
                await self._jobs.insert_one(_document(job))
            except DuplicateKeyError as exc:
                raise _duplicate(job, exc.details, str(exc)) from None
        return job

    async def create_many(self, jobs: Sequence[Job]) -> list[Job]:
        if not jobs:
            return []
        docs = [_document(job) for job in jobs]
        with self._reachable():
            try:
                await self._jobs.insert_many(docs, ordered=True)
            except BulkWriteError as exc:
                # All or nothing without a transaction (which would need a replica set): an
                # ordered insert stops at the first error, so exactly the first nInserted
                # documents went in; take them out again. Readers may glimpse them meanwhile.
                inserted = [doc["_id"] for doc in docs[: exc.details.get("nInserted", 0)]]
                if inserted:
                    await self._jobs.delete_many({"_id": {"$in": inserted}})
                raise _batch_error(jobs, exc) from None
        return list(jobs)

    async def get(self, job_id: str) -> Job | None:
        with self._reachable():
            doc = await self._jobs.find_one({"_id": job_id})
        return None if doc is None else _job(doc)

    async def find_by_idempotency_key(self, key: str) -> Job | None:
        with self._reachable():
            doc = await self._jobs.find_one({"idempotency_key": key})
        return None if doc is None else _job(doc)

    async def transition(
        self,
        job_id: str,
        target: JobState,
        *,
        sources: frozenset[JobState] | None = None,
        attempt: int | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> Job | None:
        allowed = check_transition(target, sources, changes)
        with self._reachable():
            try:
                doc = await self._jobs.find_one_and_update(
                    _match(job_id, allowed, attempt),
                    _update(changes or {}, target),
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:  # changes took another job's idempotency key
                raise DuplicateJob(job_id, (changes or {}).get("idempotency_key")) from None
        return None if doc is None else _job(doc)

    async def update(
        self,
        job_id: str,
        changes: Mapping[str, Any],
        *,
        state: JobState,
        attempt: int | None = None,
    ) -> bool:
        check_changes(changes)
        with self._reachable():
            try:
                result = await self._jobs.update_one(
                    _match(job_id, frozenset({state}), attempt), _update(changes, None)
                )
            except DuplicateKeyError:
                raise DuplicateJob(job_id, changes.get("idempotency_key")) from None
        return result.matched_count > 0

    async def delete(self, job_id: str) -> bool:
        with self._reachable():
            result = await self._jobs.delete_one({"_id": job_id})
        return result.deleted_count > 0

    async def list(self, query: JobQuery) -> JobPage:
        where: _Document = {}
        if query.states:  # an empty set filters nothing, as in SQLiteStore
            where["state"] = {"$in": sorted(state.value for state in query.states)}
        if query.type is not None:
            where["type"] = query.type
        if query.queue is not None:
            where["queue"] = query.queue
        for key, value in (query.tags or {}).items():
            where[f"tags.{key}"] = value  # a key with a dot or a leading $ would read as a path
        if query.cursor is not None:
            where["_id"] = {"$lt": query.cursor}
        # One more than asked for tells whether another page follows.
        cursor = self._jobs.find(where).sort("_id", DESCENDING).limit(query.limit + 1)
        with self._reachable():
            jobs = [_job(doc) async for doc in cursor]
        more = len(jobs) > query.limit
        jobs = jobs[: query.limit]
        return JobPage(jobs=jobs, next_cursor=jobs[-1].id if more and jobs else None)

    async def counts(self) -> dict[str, dict[JobState, int]]:
        pipeline = [{"$group": {"_id": {"queue": "$queue", "state": "$state"}, "n": {"$sum": 1}}}]
        with self._reachable():
            # PyMongo's AsyncCollection.aggregate is a coroutine that returns a cursor;
            # Motor's (and so mongomock-motor's, the tests' stand-in) returns the cursor itself.
            cursor: Any = self._jobs.aggregate(pipeline)
            if inspect.isawaitable(cursor):
                cursor = await cursor
            groups: list[_Document] = [group async for group in cursor]
        out: dict[str, dict[JobState, int]] = {}
        for group in groups:
            out.setdefault(group["_id"]["queue"], {})[JobState(group["_id"]["state"])] = group["n"]
        return out

    async def dependents(self, job_id: str) -> builtins.list[Job]:  # bare `list` is the method
        cursor = self._jobs.find({"depends_on": job_id}).sort("_id", ASCENDING)
        with self._reachable():
            return [_job(doc) async for doc in cursor]

    async def storage_bytes(self) -> int:
        # dbStats, not collStats: the database is the store's, and every collection it keeps
        # there (with its indexes) is part of its size.
        with self._reachable():
            try:
                stats: _Document = await self.database.command({"dbStats": 1})
            except OperationFailure as exc:  # a user without the dbStats privilege, say
                log.debug("dbStats refused: %s", exc)
                return 0
            except NotImplementedError:  # the tests' stand-in (mongomock) cannot tell
                return 0
        return int(stats.get("storageSize", 0)) + int(stats.get("indexSize", 0))


def _document(job: Job) -> _Document:
    fields = msgspec.to_builtins(job, builtin_types=(datetime,))
    del fields["id"]
    if fields["idempotency_key"] is None:
        del fields["idempotency_key"]  # absent, not null: see _INDEXES
    return {"_id": job.id, **fields}


def _job(doc: Mapping[str, Any]) -> Job:
    fields = {name: _utc(value) for name, value in doc.items() if name != "_id"}
    fields["id"] = doc["_id"]
    return msgspec.convert(fields, Job)


def _utc(value: Any) -> Any:
    """`value` with every datetime in it aware and in UTC (mongomock may hand back naive
    ones, and PyMongo's aware ones carry its own UTC tzinfo)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dict):
        return {key: _utc(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_utc(item) for item in value]
    return value


def _match(job_id: str, states: frozenset[JobState], attempt: int | None) -> _Document:
    where: _Document = {"_id": job_id, "state": {"$in": sorted(state.value for state in states)}}
    if attempt is not None:
        where["attempt"] = attempt
    return where


def _update(changes: Mapping[str, Any], target: JobState | None) -> _Document:
    fields: _Document = msgspec.to_builtins(dict(changes), builtin_types=(datetime,))
    if target is not None:
        fields["state"] = target.value
    fields["updated_at"] = utcnow()
    update: _Document = {"$set": fields}
    if "idempotency_key" in fields and fields["idempotency_key"] is None:
        del fields["idempotency_key"]
        update["$unset"] = {"idempotency_key": ""}  # absent, not null: see _INDEXES
    return update


def _duplicate(job: Job, details: Mapping[str, Any] | None, message: str) -> DuplicateJob:
    """DuplicateJob for `job`, naming its idempotency key when that index was the clash."""
    # MongoDB names the index in keyPattern; mongomock leaves details out for _id clashes.
    pattern = (details or {}).get("keyPattern")
    cause = str(pattern) if pattern is not None else message
    return DuplicateJob(job.id, job.idempotency_key if "idempotency_key" in cause else None)


def _batch_error(jobs: Sequence[Job], exc: BulkWriteError) -> StoreError:
    errors = exc.details.get("writeErrors") or []
    if not errors or errors[0].get("code") != _DUPLICATE_KEY:
        return StoreError(f"inserting {len(jobs)} jobs failed: {exc}")
    first = errors[0]
    return _duplicate(jobs[first["index"]], first, first.get("errmsg", ""))
