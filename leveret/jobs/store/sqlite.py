"""The embedded job store: one SQLite file in WAL mode, shared by every process on a machine.

Each process has one writer thread that takes every write waiting for it and commits them in
one transaction, and one reader thread (`sqlite_thread`). A job is one row: the columns the
listings filter on, and the whole job as msgpack.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from leveret.jobs.errors import DuplicateJob, StoreUnavailable
from leveret.jobs.model import Job
from leveret.jobs.states import TERMINAL_STATES, JobState
from leveret.jobs.store.protocol import JobPage, JobQuery, applied, check_changes, check_transition
from leveret.jobs.store.sqlite_thread import ConnectionThread

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    tags TEXT,
    doc BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, id);
CREATE INDEX IF NOT EXISTS jobs_queue_state ON jobs (queue, state, id);
CREATE INDEX IF NOT EXISTS jobs_type ON jobs (type, id);
CREATE TABLE IF NOT EXISTS job_deps (
    depends_on TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (depends_on, job_id)
) WITHOUT ROWID;
"""

_CHILDLESS_MAX = 10_000  # terminal jobs remembered as having no dependents

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Job)


class SQLiteStore:
    """The JobStore on one SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # Jobs this process moved to a terminal state that, as the same transaction saw, no
        # job depends on: asking for their dependents next (as every worker does after every
        # job) needs no trip to the reader thread. A dependent submitted later finds its
        # dependency already ended and moves itself on, so the answer cannot go stale.
        self._childless: OrderedDict[str, None] = OrderedDict()
        self._writer: ConnectionThread | None = None
        self._reader: ConnectionThread | None = None

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """A store for `sqlite:///relative/path` or `sqlite:////absolute/path`."""
        return cls(url.removeprefix("sqlite://").removeprefix("/") or "leveret.db")

    async def open(self) -> None:
        if self._writer is not None:
            return
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(f"sqlite:///{self.path}", str(exc)) from None
        writer = ConnectionThread(
            self.path, "leveret-sqlite-writer", transactional=True, setup=_SCHEMA
        )
        await asyncio.to_thread(writer.start_and_wait)
        reader = ConnectionThread(self.path, "leveret-sqlite-reader", transactional=False)
        await asyncio.to_thread(reader.start_and_wait)
        self._writer, self._reader = writer, reader

    async def close(self) -> None:
        for thread in (self._writer, self._reader):
            if thread is not None:
                await asyncio.to_thread(thread.stop)
        self._writer = self._reader = None

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None:
            raise RuntimeError("store is not open")
        result: T = await self._writer.submit(op)
        return result

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            raise RuntimeError("store is not open")
        result: T = await self._reader.submit(op)
        return result

    async def create(self, job: Job) -> Job:
        await self._write(lambda conn: _insert(conn, job))
        return job

    async def create_many(self, jobs: Sequence[Job]) -> list[Job]:
        def insert_all(conn: sqlite3.Connection) -> None:
            for job in jobs:  # the savepoint around this op makes the batch all-or-nothing
                _insert(conn, job)

        await self._write(insert_all)
        return list(jobs)

    async def get(self, job_id: str) -> Job | None:
        return await self._read(lambda conn: _select(conn, "id = ?", job_id))

    async def find_by_idempotency_key(self, key: str) -> Job | None:
        return await self._read(lambda conn: _select(conn, "idempotency_key = ?", key))

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

        def move(conn: sqlite3.Connection) -> Job | None:
            job = _select(conn, "id = ?", job_id)
            if job is None or job.state not in allowed:
                return None
            if attempt is not None and job.attempt != attempt:
                return None
            moved = applied(job, target, changes or {})
            _rewrite(conn, moved, changes or {})
            if target in TERMINAL_STATES:
                self._note_dependents(job_id, _has_dependents(conn, job_id))
            return moved

        return await self._write(move)

    def _note_dependents(self, job_id: str, found: bool) -> None:
        # Runs on the writer thread; each OrderedDict call is atomic under the GIL. A batch
        # that fails after this leaves a note behind, so a later move that finds dependents
        # must remove it.
        if found:
            self._childless.pop(job_id, None)
            return
        self._childless[job_id] = None
        if len(self._childless) > _CHILDLESS_MAX:
            self._childless.popitem(last=False)

    async def update(
        self,
        job_id: str,
        changes: Mapping[str, Any],
        *,
        state: JobState,
        attempt: int | None = None,
    ) -> bool:
        check_changes(changes)

        def patch(conn: sqlite3.Connection) -> bool:
            job = _select(conn, "id = ?", job_id)
            if job is None or job.state is not state:
                return False
            if attempt is not None and job.attempt != attempt:
                return False
            _rewrite(conn, applied(job, None, changes), changes)
            return True

        return await self._write(patch)

    async def delete(self, job_id: str) -> bool:
        def remove(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM job_deps WHERE job_id = ?", (job_id,))
            return conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount > 0

        return await self._write(remove)

    async def list(self, query: JobQuery) -> JobPage:
        clauses: list[str] = []
        params: list[Any] = []
        if query.states:
            clauses.append(f"state IN ({','.join('?' * len(query.states))})")
            params.extend(sorted(query.states))
        for column, value in (("type", query.type), ("queue", query.queue)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        for key, value in (query.tags or {}).items():
            clauses.append("json_extract(tags, ?) = ?")
            params.extend((f'$."{key}"', value))
        if query.cursor is not None:
            clauses.append("id < ?")
            params.append(query.cursor)
        where = " AND ".join(clauses) or "1"
        sql = f"SELECT doc FROM jobs WHERE {where} ORDER BY id DESC LIMIT ?"
        params.append(query.limit + 1)

        def fetch(conn: sqlite3.Connection) -> list[Job]:
            return [_decoder.decode(row[0]) for row in conn.execute(sql, params)]

        jobs = await self._read(fetch)
        more = len(jobs) > query.limit
        jobs = jobs[: query.limit]
        return JobPage(jobs=jobs, next_cursor=jobs[-1].id if more and jobs else None)

    async def counts(self) -> dict[str, dict[JobState, int]]:
        def count(conn: sqlite3.Connection) -> dict[str, dict[JobState, int]]:
            out: dict[str, dict[JobState, int]] = {}
            sql = "SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state"
            for queue_name, state, n in conn.execute(sql):
                out.setdefault(queue_name, {})[JobState(state)] = n
            return out

        return await self._read(count)

    async def dependents(self, job_id: str) -> builtins.list[Job]:  # bare `list` is the method
        if self._childless.pop(job_id, False) is None:
            return []

        def fetch(conn: sqlite3.Connection) -> list[Job]:
            sql = (
                "SELECT doc FROM jobs WHERE id IN "
                "(SELECT job_id FROM job_deps WHERE depends_on = ?) ORDER BY id"
            )
            return [_decoder.decode(row[0]) for row in conn.execute(sql, (job_id,))]

        return await self._read(fetch)

    async def storage_bytes(self) -> int:
        # The WAL holds writes not yet checkpointed into the main file: both are the store.
        if self.path == ":memory:":
            return 0

        def measure(_: sqlite3.Connection) -> int:
            return sum(_file_size(self.path + suffix) for suffix in ("", "-wal"))

        return await self._read(measure)


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:  # no WAL at the moment, say
        return 0


def _insert(conn: sqlite3.Connection, job: Job) -> None:
    try:
        conn.execute(
            "INSERT INTO jobs (type, queue, state, idempotency_key, tags, doc, id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            _row(job),
        )
    except sqlite3.IntegrityError as exc:
        key = job.idempotency_key if "idempotency_key" in str(exc) else None
        raise DuplicateJob(job.id, key) from None
    _link_deps(conn, job)


def _rewrite(conn: sqlite3.Connection, job: Job, changes: Mapping[str, Any]) -> None:
    # Every column a query filters on follows the document, not only the state: a change
    # may move the job to another queue or give it another idempotency key.
    try:
        conn.execute(
            "UPDATE jobs SET type = ?, queue = ?, state = ?, idempotency_key = ?, tags = ?, "
            "doc = ? WHERE id = ?",
            _row(job),
        )
    except sqlite3.IntegrityError:
        raise DuplicateJob(job.id, job.idempotency_key) from None
    if "depends_on" in changes:
        conn.execute("DELETE FROM job_deps WHERE job_id = ?", (job.id,))
        _link_deps(conn, job)


def _row(job: Job) -> tuple[Any, ...]:
    """The jobs table's columns for `job`, in the order _insert and _rewrite name them."""
    tags = json.dumps(job.tags) if job.tags else None
    return (
        job.type,
        job.queue,
        job.state.value,
        job.idempotency_key,
        tags,
        _encoder.encode(job),
        job.id,
    )


def _has_dependents(conn: sqlite3.Connection, job_id: str) -> bool:
    sql = "SELECT 1 FROM job_deps WHERE depends_on = ? LIMIT 1"
    return conn.execute(sql, (job_id,)).fetchone() is not None


def _link_deps(conn: sqlite3.Connection, job: Job) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO job_deps (depends_on, job_id) VALUES (?, ?)",
        [(dep, job.id) for dep in job.depends_on],
    )


def _select(conn: sqlite3.Connection, where: str, value: str) -> Job | None:
    row = conn.execute(f"SELECT doc FROM jobs WHERE {where}", (value,)).fetchone()
    return None if row is None else _decoder.decode(row[0])
