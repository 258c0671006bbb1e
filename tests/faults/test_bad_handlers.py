"""Misbehaving handlers, run by a real `leveret worker` process: handlers that hang, that leak
exceptions of every kind, that return what cannot be stored. Each is recorded on its job, and
the worker process stays up and goes on running other jobs."""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest

from leveret.broker import BrokerSession, Producer
from leveret.jobs import TERMINAL_STATES, Job, JobState, Settings
from leveret.jobs.store import SQLiteStore
from tests.conditions import eventually
from tests.faults.bad_handlers import (
    BACKGROUND_FAILURE,
    HANG_ATTEMPTS,
    HANG_TIMEOUT,
    HUGE,
    LEAKS,
)
from tests.integration.conftest import WorkerProcess, depth, until_consumers

TARGET = "tests.faults.bad_handlers:worker"
CONCURRENCY = 2  # as many pool threads as attempts a hanging plain function gets
MAX_RESULT = 1024  # bytes; the worker's LEVERET_MAX_RESULT
LAST_ERROR_LIMIT = 4096  # characters of last_error the worker keeps
STOP_TIMEOUT = 10.0  # seconds an idle worker may take to exit on SIGTERM
SHOWN_LINE = 400  # characters of each output line shown on failure (some are 1 MB)


class Tap:
    """A worker process whose output is read as it comes, by a thread, as a log collector
    would: a pipe nobody reads fills up, and then the worker blocks in its next log call."""

    def __init__(self, process: WorkerProcess) -> None:
        self.worker = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self.worker.process.stdout
        assert stdout is not None
        try:
            for raw in iter(stdout.readline, b""):
                self.lines.append(raw.decode(errors="replace"))
        except (OSError, ValueError):  # the pipe was closed under us: the process is gone
            return

    def saw(self, text: str) -> bool:
        """Whether a line of the output so far contains `text`."""
        return any(text in line for line in list(self.lines))

    def alive(self) -> bool:
        return self.worker.process.poll() is None

    def close(self) -> None:
        """Kill the process and read the rest of its output (before the pipe is closed)."""
        if self.alive():
            self.worker.process.kill()
        self.worker.process.wait(10)
        self._reader.join(10)

    def shown(self) -> str:
        """The output so far, long lines cut, for a failure report."""
        code = self.worker.process.poll()
        status = "still running" if code is None else f"exit code {code}"
        body = "".join(line[:SHOWN_LINE] for line in list(self.lines))
        return f"--- worker process {self.worker.process.pid} ({status}) ---\n{body}"


def start_tapped(settings: Settings, processes: list[WorkerProcess], *flags: str) -> Tap:
    """Start a worker process running the bad handlers; the `worker_processes` fixture
    kills what is left of it."""
    process = WorkerProcess(settings, TARGET, *flags)
    processes.append(process)
    return Tap(process)


@contextmanager
def showing_output(*taps: Tap) -> Iterator[None]:
    """On failure, attach each worker process's exit code and output to the error."""
    try:
        yield
    except BaseException as exc:
        for tap in taps:
            exc.add_note(tap.shown())
        raise


@pytest.fixture
async def worker(
    settings: Settings,
    session: BrokerSession,
    worker_processes: list[WorkerProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Tap]:
    """One worker process running the bad handlers, consuming the default queue."""
    monkeypatch.setenv("LEVERET_MAX_RESULT", str(MAX_RESULT))
    tap = start_tapped(settings, worker_processes, "--concurrency", str(CONCURRENCY))
    await session.router.ensure_queue("default")
    with showing_output(tap):
        await until_consumers(session, session.names.work_queue("default"), 1)
    yield tap
    tap.close()


def assert_alive(tap: Tap) -> None:
    code = tap.worker.process.poll()
    assert code is None, f"the worker process exited with {code}"


async def until_done(store: SQLiteStore, tap: Tap, job_id: str, timeout: float = 15.0) -> Job:
    """The job once it has ended; fails at once if the worker process dies meanwhile."""

    async def probe() -> Job | None:
        assert_alive(tap)
        return await store.get(job_id)

    job = await eventually(
        probe,
        lambda job: job is not None and job.state in TERMINAL_STATES,
        timeout=timeout,
        what=f"job {job_id} to end",
    )
    assert job is not None
    return job


async def until_exit(tap: Tap, timeout: float) -> int:
    """The worker process's exit code, once it has exited within `timeout` seconds."""

    async def exit_code() -> int | None:
        return tap.worker.process.poll()

    code = await eventually(
        exit_code, lambda code: code is not None, timeout=timeout, what="the worker to exit"
    )
    assert code is not None
    return code


async def until_logged(tap: Tap, text: str) -> None:
    """Wait until the worker process has written a line containing `text`."""

    async def seen() -> bool:
        return tap.saw(text)

    await eventually(seen, timeout=5, what=f"{text!r} in the worker's output")


async def until_in_dlq(session: BrokerSession, count: int) -> None:
    """Wait for `count` messages in the default queue's DLQ: the worker sends a job's copy
    there just after recording its end, so the store is no barrier for it."""
    await eventually(
        lambda: depth(session, session.names.dead_letter_queue("default")),
        lambda ready: ready == count,
        timeout=5,
        what=f"{count} message(s) in the DLQ",
    )


async def assert_goes_on(store: SQLiteStore, producer: Producer, tap: Tap) -> None:
    """The worker still runs jobs, coroutines and plain functions (more of them than it has
    threads), and no job of the queue is left running."""
    jobs = [await producer.submit(kind, n) for n in range(CONCURRENCY + 1) for kind in _ECHOES]
    for job in jobs:
        done = await until_done(store, tap, job.id)
        assert done.state is JobState.COMPLETED, done
        assert done.result == job.payload
    counts = (await store.counts()).get("default", {})
    assert counts.get(JobState.RUNNING, 0) == 0, counts
    assert_alive(tap)


_ECHOES = ("echo-async", "echo-sync")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["async", "stubborn", "sync"])
async def test_hanging_handler_is_stopped_retried_and_dead_lettered_while_others_run(
    kind: str,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker: Tap,
) -> None:
    """A handler that never returns (a coroutine awaiting an event nobody sets, one that
    also swallows its cancellation, or a plain function blocking its thread) is given up on
    at its timeout, retried per its policy and ends dead_letter with the timeout as its
    error; meanwhile and afterwards other jobs complete, though what hangs cannot be
    reclaimed; and the worker still stops when told to."""
    with showing_output(worker):
        hung = await producer.submit(f"hang-{kind}")
        await eventually(
            lambda: store.get(hung.id),
            lambda job: job is not None and job.state is JobState.RUNNING,
            what="the hanging job to start",
        )
        meanwhile = [await producer.submit(echo, "meanwhile") for echo in _ECHOES]
        ran = [await until_done(store, worker, job.id) for job in meanwhile]
        done = await until_done(store, worker, hung.id)

        assert done.state is JobState.DEAD_LETTER, done
        assert done.attempt == HANG_ATTEMPTS
        assert done.error_category == "timeout"
        assert done.last_error == f"timed out after {HANG_TIMEOUT:g}s"
        await until_in_dlq(session, 1)
        for job in ran:
            assert job.state is JobState.COMPLETED, job
            assert job.completed_at is not None
            assert done.completed_at is not None
            assert job.completed_at < done.completed_at  # it did not wait for the hung one
        await assert_goes_on(store, producer, worker)

        worker.worker.process.send_signal(signal.SIGTERM)
        assert await until_exit(worker, STOP_TIMEOUT) == 0


def _expected_error(name: str) -> str:
    """The start of the last_error a leaked exception must leave on its job."""
    return {
        "SystemExit": "SystemExit: 3",
        "KeyboardInterrupt": "KeyboardInterrupt: interrupted by the handler",
        "GeneratorExit": "GeneratorExit: closed by the handler",
        "CancelledError": "CancelledError",
        "Unprintable": "Unprintable",
        "huge": "RuntimeError: xxxxxxxx",
        "Doom": "Doom: a BaseException of the handler's own",
    }[name]


@pytest.mark.parametrize(
    ("kind", "name"),
    [("async", name) for name in LEAKS]
    + [("sync", name) for name in ("SystemExit", "KeyboardInterrupt", "CancelledError")],
)
async def test_leaked_exception_is_recorded_and_the_worker_goes_on(
    kind: str,
    name: str,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker: Tap,
) -> None:
    """Whatever a handler raises, BaseExceptions that stop an event loop or a task
    included, the attempt fails with the exception named in last_error (cut to a bounded
    length), the job goes to the DLQ, and the worker process goes on."""
    with showing_output(worker):
        job = await producer.submit(f"leak-{kind}", name)
        done = await until_done(store, worker, job.id)

        assert done.state is JobState.DEAD_LETTER, done  # one attempt, retryable error
        assert done.error_category == "error"
        assert done.last_error is not None
        assert done.last_error.startswith(_expected_error(name)), done.last_error[:200]
        assert len(done.last_error) <= LAST_ERROR_LIMIT < HUGE
        await assert_goes_on(store, producer, worker)
        await until_in_dlq(session, 1)


async def test_background_task_failing_after_its_handler_returned_spares_job_and_worker(
    store: SQLiteStore, producer: Producer, worker: Tap
) -> None:
    """A task a handler leaves behind that raises after the handler returned: the job is
    completed with the handler's result, and the worker goes on (the failure is logged)."""
    with showing_output(worker):
        job = await producer.submit("leak-task")
        done = await until_done(store, worker, job.id)

        assert done.state is JobState.COMPLETED, done
        assert done.result == "returned"
        await assert_goes_on(store, producer, worker)
        # The fault did happen: the worker's event loop reported the task's error.
        await until_logged(worker, BACKGROUND_FAILURE)


@pytest.mark.parametrize(
    ("job_type", "name", "category", "reason"),
    [
        ("result", "Opaque", "unserialisable", "Opaque is unsupported"),
        ("result", "circular", "unserialisable", "recursion"),
        ("result", "tuple-keys", "unserialisable", "keys"),
        ("result", "huge-int", "unserialisable", "2**64"),
        ("result", "large", "result_too_large", f"over the limit of {MAX_RESULT}"),
        ("checkpoint", "circular", "unserialisable", "recursion"),
    ],
)
async def test_value_that_cannot_be_stored_fails_the_job_and_the_worker_goes_on(
    job_type: str,
    name: str,
    category: str,
    reason: str,
    store: SQLiteStore,
    session: BrokerSession,
    producer: Producer,
    worker: Tap,
) -> None:
    """A result (or checkpoint) msgpack cannot carry (an unknown object, a circular list,
    an int past 64 bits), a result the API's JSON cannot show (a dict with tuple keys), or
    one over the result limit: the job ends failed, without a result and with a reason
    saying why; the worker goes on."""
    with showing_output(worker):
        job = await producer.submit(job_type, name)
        done = await until_done(store, worker, job.id)

        assert done.state is JobState.FAILED, done
        assert done.error_category == category
        assert done.last_error is not None
        assert reason in done.last_error, done.last_error
        assert done.result is None
        assert done.checkpoint is None
        await assert_goes_on(store, producer, worker)
        await until_in_dlq(session, 1)


async def test_results_msgpack_and_json_can_carry_are_stored_as_they_read_back(
    store: SQLiteStore, producer: Producer, worker: Tap
) -> None:
    """Not every odd result is an error: a set is stored as a list, and a dict with bytes
    keys keeps them (the API's JSON shows such keys base64-encoded); neither harms the
    worker."""
    with showing_output(worker):
        as_set = await producer.submit("result", "set")
        bytes_keys = await producer.submit("result", "bytes-keys")
        stored_set = await until_done(store, worker, as_set.id)
        stored_keys = await until_done(store, worker, bytes_keys.id)

        assert stored_set.state is JobState.COMPLETED, stored_set
        assert sorted(stored_set.result) == [1, 2, 3]
        assert stored_keys.state is JobState.COMPLETED, stored_keys
        assert stored_keys.result == {b"k": 1}
        await assert_goes_on(store, producer, worker)
