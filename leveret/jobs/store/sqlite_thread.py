"""The threads behind the SQLite store: each owns one connection and runs the operations
handed to it in batches, settling each caller's future on the caller's loop.

The writer commits every write waiting for it in one transaction (a savepoint each, so one
refused write does not undo the others); the reader runs reads one by one. `BEGIN
IMMEDIATE` takes SQLite's write lock up front, so a transition's read-check-write is atomic
across processes too.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from leveret.jobs.errors import StoreUnavailable

_BATCH_MAX = 512  # writes committed together at most; bounds one transaction's latency
_BUSY_TIMEOUT_MS = 10_000
_BUSY_FIRST_PAUSE = 0.0002  # seconds between tries for the write lock, doubling…
_BUSY_MAX_PAUSE = 0.002  # …up to this

Operation = Callable[[sqlite3.Connection], Any]
"""Work for a connection thread: called there with its connection."""


_Item = tuple[Operation, asyncio.Future[Any]]


class ConnectionThread(threading.Thread):
    """A thread owning one connection, running operations handed to it in batches.

    `transactional`: run each batch in one transaction (the writer); otherwise one by one
    (the reader). `setup` is a script run once on the new connection (the schema)."""

    def __init__(
        self, path: str, name: str, *, transactional: bool, setup: str | None = None
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._path = path
        self._transactional = transactional
        self._setup = setup
        self._inbox: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start_and_wait(self) -> None:
        """Start the thread and return once its connection is open; StoreUnavailable if it
        could not be."""
        self.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def submit(self, op: Operation) -> asyncio.Future[Any]:
        """Queue `op`; the future (of the running loop) settles with what it returned."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inbox.put((op, future))
        return future

    def stop(self) -> None:
        """Finish what is queued, close the connection and end the thread."""
        self._inbox.put(None)
        self.join()

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
            # The writer waits for the write lock itself (see _begin); readers let SQLite wait.
            busy_timeout = 0 if self._transactional else _BUSY_TIMEOUT_MS
            conn.execute(f"PRAGMA busy_timeout = {busy_timeout}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if self._setup is not None:
                conn.executescript(self._setup)
        except sqlite3.Error as exc:
            self._error = StoreUnavailable(f"sqlite:///{self._path}", str(exc))
            self._ready.set()
            return
        self._ready.set()
        try:
            while (batch := self._take()) is not None:
                self._run_batch(conn, batch)
        finally:
            conn.close()

    def _take(self) -> list[_Item] | None:
        first = self._inbox.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < _BATCH_MAX:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._inbox.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            if self._transactional:
                _begin(conn)
            for op, future in batch:
                outcomes.append(self._run_one(conn, op, future))
            if self._transactional:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = StoreUnavailable(f"sqlite:///{self._path}", str(exc))
            outcomes = [(future, None, error) for _, future in batch]
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, settled in by_loop.items():
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, settled)

    def _run_one(
        self, conn: sqlite3.Connection, op: Operation, future: asyncio.Future[Any]
    ) -> tuple[asyncio.Future[Any], Any, BaseException | None]:
        if not self._transactional:
            try:
                return future, op(conn), None
            except Exception as exc:  # handed to the awaiting caller
                return future, None, exc
        conn.execute("SAVEPOINT op")
        try:
            result = op(conn)
        except sqlite3.OperationalError:
            raise  # the database itself failed: the whole batch fails
        except Exception as exc:  # handed to the awaiting caller, the batch goes on
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            return future, None, exc
        conn.execute("RELEASE op")
        return future, result, None


def _begin(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another process's write lock in short steps.

    SQLite's own busy handler sleeps 1, 2, 5 … up to 100 ms between tries, so a write that
    meets a gateway's or another worker's batch (each holds the lock for a millisecond or
    two) could wait a tenth of a second: it set the store's tail latency. Retrying every few
    hundred microseconds keeps the wait near the holder's actual batch time.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    pause = _BUSY_FIRST_PAUSE
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _BUSY_MAX_PAUSE)


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.done():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
