"""The SDK's API calls as plain data: what to send and how to read the answer.

`Client` and `SyncClient` differ only in how they move bytes; everything else (paths,
bodies, query strings, timeouts, decoding, error mapping, the SSE framing) is here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypedDict, TypeVar

import httpx
import msgspec

from leveret.client.errors import (
    UnexpectedResponseError,
    error_from_response,
)
from leveret.client.models import (
    BatchResult,
    DlqPage,
    Event,
    JobInfo,
    JobPage,
    JobResult,
    QueueInfo,
    QueueStats,
    StatsAnswer,
    WaitResult,
)
from leveret.jobs.backoff import Backoff
from leveret.jobs.durations import parse_duration

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8080"
API = "/api/v1"

Duration = float | str | timedelta
"""Seconds, a string such as "500ms" or "1h30m", or a timedelta."""

# How much longer than the wait itself the HTTP read may take: the gateway answers the
# moment the wait ends, so this only covers the trip back.
WAIT_MARGIN_SECONDS = 10.0
# The gateway sends `: keepalive` every 15 s; a stream silent for four of those is dead
# (a half-open TCP connection would otherwise hang the reader forever).
EVENTS_READ_TIMEOUT_SECONDS = 60.0


class SubmitOptions(TypedDict, total=False):
    """What `submit` takes besides type and payload; None leaves an option to the server."""

    queue: str | None
    priority: int | None  # 0 critical .. 4 bulk (Priority)
    delay: Duration | None  # excludes scheduled_at
    scheduled_at: datetime | str | None
    timeout: Duration | None  # the handler's time limit
    max_attempts: int | None  # 1..100
    backoff: Backoff | Mapping[str, Any] | None  # strategy, initial, max, multiplier, jitter
    idempotency_key: str | None  # a second submit with the same key answers the first job
    correlation_id: str | None
    depends_on: Sequence[str] | None  # job ids that must complete first
    tags: Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API request and how to read its answer into a `T`."""

    method: str
    path: str
    answer: Callable[[bytes], T]
    params: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None  # JSON-encoded; None sends no body
    read_timeout: float | None = None  # None: the client's own
    job_id: str | None = None  # the job it is about, for JobNotFoundError

    def build(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The request, ready for `http.send`."""
        timeout = http.timeout
        if self.read_timeout is not None:
            timeout = httpx.Timeout(
                connect=timeout.connect,
                read=self.read_timeout,
                write=timeout.write,
                pool=timeout.pool,
            )
        content = None if self.body is None else msgspec.json.encode(self.body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        return http.build_request(
            self.method,
            self.path,
            params=tuple(self.params),
            content=content,
            headers=headers,
            timeout=timeout,
        )

    def read(self, response: httpx.Response) -> T:
        """The answer as a `T`; raises the mapped LeveretClientError for an error answer."""
        if response.is_error:
            raise error_from_response(response, job_id=self.job_id)
        try:
            return self.answer(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UnexpectedResponseError(
                f"cannot read the answer to {self.method} {self.path}: {exc}",
                "unexpected_response",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from exc


def client_headers(api_key: str | None) -> dict[str, str]:
    """Headers every request carries."""
    headers = {"Accept": "application/json", "User-Agent": "leveret-python"}
    if api_key:
        headers["X-API-Key"] = api_key
    return headers


def _decoder(kind: type[T]) -> Callable[[bytes | str], T]:
    decoder = msgspec.json.Decoder(kind)
    return decoder.decode


def _nothing(_: bytes) -> None:
    return None


class _Counted(msgspec.Struct):
    retried: int = 0
    purged: int = 0


class _Queues(msgspec.Struct):
    queues: list[QueueInfo] = msgspec.field(default_factory=list)


_job = _decoder(JobInfo)
_counted = _decoder(_Counted)


def _stats(content: bytes) -> QueueStats:
    return msgspec.json.decode(content, type=StatsAnswer).merged()


def _queues(content: bytes) -> list[QueueInfo]:
    return msgspec.json.decode(content, type=_Queues).queues


def _retried(content: bytes) -> int:
    return _counted(content).retried


def _purged(content: bytes) -> int:
    return _counted(content).purged


def wire_duration(value: Duration) -> float | str:
    """A duration as the API accepts it: strings as given, numbers as seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else value


def wire_time(value: datetime | str) -> str:
    """A point in time as RFC 3339 UTC; a naive datetime is local time, as Python has it."""
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def submission(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A submit body from `spec`: keys whose value is None are left out, durations, times
    and backoff policies put in the API's form."""
    body: dict[str, Any] = {}
    for key, value in spec.items():
        if value is None:
            continue
        if key in ("delay", "timeout"):
            value = wire_duration(value)
        elif key == "scheduled_at":
            value = wire_time(value)
        elif key == "backoff" and isinstance(value, Backoff):
            value = msgspec.to_builtins(value)
        body[key] = value
    return body


def submit(spec: Mapping[str, Any]) -> Call[JobInfo]:
    """`POST /jobs`."""
    return Call("POST", f"{API}/jobs", _job, body=submission(spec))


def submit_batch(jobs: Sequence[Mapping[str, Any]], atomic: bool) -> Call[BatchResult]:
    """`POST /jobs/batch`."""
    body = {"jobs": [submission(job) for job in jobs], "atomic": atomic}
    return Call("POST", f"{API}/jobs/batch", _decoder(BatchResult), body=body)


def get(job_id: str) -> Call[JobInfo]:
    """`GET /jobs/{id}`."""
    return Call("GET", f"{API}/jobs/{job_id}", _job, job_id=job_id)


def wait(job_id: str, timeout: Duration) -> Call[WaitResult]:
    """`POST /jobs/{id}/wait`, with a read timeout longer than the wait."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    return Call(
        "POST",
        f"{API}/jobs/{job_id}/wait",
        _decoder(WaitResult),
        body={"timeout": wire_duration(timeout)},
        read_timeout=parse_duration(seconds) + WAIT_MARGIN_SECONDS,
        job_id=job_id,
    )


def list_jobs(
    *,
    state: str | None,
    type: str | None,
    queue: str | None,
    tags: Mapping[str, str] | None,
    limit: int,
    cursor: str | None,
    include: Sequence[str],
) -> Call[JobPage]:
    """`GET /jobs`, one page."""
    params = _filters(state=state, type=type, queue=queue, limit=limit, cursor=cursor)
    params += [("tag", f"{key}:{value}") for key, value in (tags or {}).items()]
    if include:
        params.append(("include", ",".join(include)))
    return Call("GET", f"{API}/jobs", _decoder(JobPage), params=params)


def cancel(job_id: str, reason: str, force: bool) -> Call[JobInfo]:
    """`POST /jobs/{id}/cancel`."""
    body = {"reason": reason, "force": force}
    return Call("POST", f"{API}/jobs/{job_id}/cancel", _job, body=body, job_id=job_id)


def retry(job_id: str, reset_attempts: bool) -> Call[JobInfo]:
    """`POST /jobs/{id}/retry`."""
    body = {"reset_attempts": reset_attempts}
    return Call("POST", f"{API}/jobs/{job_id}/retry", _job, body=body, job_id=job_id)


def delete(job_id: str) -> Call[None]:
    """`DELETE /jobs/{id}`."""
    return Call("DELETE", f"{API}/jobs/{job_id}", _nothing, job_id=job_id)


def get_result(job_id: str) -> Call[JobResult]:
    """`GET /jobs/{id}/result`."""
    return Call("GET", f"{API}/jobs/{job_id}/result", _decoder(JobResult), job_id=job_id)


def stats() -> Call[QueueStats]:
    """`GET /stats`."""
    return Call("GET", f"{API}/stats", _stats)


def queues() -> Call[list[QueueInfo]]:
    """`GET /queues`."""
    return Call("GET", f"{API}/queues", _queues)


def dlq(*, queue: str | None, type: str | None, limit: int, cursor: str | None) -> Call[DlqPage]:
    """`GET /dlq`, one page."""
    params = _filters(queue=queue, type=type, limit=limit, cursor=cursor)
    return Call("GET", f"{API}/dlq", _decoder(DlqPage), params=params)


def dlq_retry(*, queue: str | None, type: str | None, ids: Sequence[str] | None) -> Call[int]:
    """`POST /dlq/retry`: answers how many jobs went back to work."""
    wanted = {"queue": queue, "type": type, "ids": None if ids is None else list(ids)}
    body = {key: value for key, value in wanted.items() if value is not None}
    return Call("POST", f"{API}/dlq/retry", _retried, body=body)


def dlq_purge(queue: str | None) -> Call[int]:
    """`DELETE /dlq`: answers how many jobs were purged."""
    params = _filters(queue=queue)
    return Call("DELETE", f"{API}/dlq", _purged, params=params)


def events(job_id: str | None, type: str | None, queue: str | None) -> Call[None]:
    """`GET /events`: read as a stream of lines, not through `Call.read`."""
    # "*" is how GopherQueue's SDK says "every job".
    params = _filters(job_id=None if job_id == "*" else job_id, type=type, queue=queue)
    return Call(
        "GET",
        f"{API}/events",
        _nothing,
        params=params,
        read_timeout=EVENTS_READ_TIMEOUT_SECONDS,
        job_id=job_id,
    )


def _filters(**values: str | int | None) -> list[tuple[str, str]]:
    return [(key, str(value)) for key, value in values.items() if value is not None]


class EventStreamDecoder:
    """Turns the lines of a `text/event-stream` into Events, by the WHATWG rules: fields
    accumulate until a blank line, `data` lines join with newlines, comments are skipped
    and the last event id carries over to later events."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, line: str) -> Event | None:
        """Take one line (without its line break); answer the Event it completes, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # `retry` and unknown fields are ignored: reconnecting is the caller's choice.
        return None

    def _dispatch(self) -> Event | None:
        name, lines = self._event or "message", self._data
        self._event, self._data = "", []
        if not lines:
            return None
        raw = "\n".join(lines)
        try:
            data: Any = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            data = raw
        job = None
        if name.startswith("job.") and isinstance(data, dict):
            try:
                job = _job(raw)
            except msgspec.ValidationError:
                job = None  # the event stays useful through `data`
        return Event(event=name, data=data, id=self._last_id, raw=raw, job=job)
