"""The Python SDK: `Client` (async) and `SyncClient`, speaking the gateway's HTTP API.

Method names, parameters, answers and errors are GopherQueue's (`GopherQueue`,
`GopherQueueSync`), so its users switch by changing an import; `dlq`, `dlq_retry`,
`dlq_purge` and `queues` are Leveret's own. What each call sends and how its answer is read
lives in `leveret.client.calls`; the classes here only move bytes.

    async with Client("http://127.0.0.1:8080", api_key="...") as client:
        job = await client.submit("email", {"to": "a@example.com"}, delay="30s")
        done = await client.wait(job.id, timeout=30)
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import httpx

from leveret.client import calls
from leveret.client.calls import (
    DEFAULT_URL,
    Call,
    Duration,
    EventStreamDecoder,
    SubmitOptions,
    client_headers,
)
from leveret.client.errors import error_from_transport
from leveret.client.models import (
    BatchResult,
    DlqPage,
    Event,
    JobInfo,
    JobPage,
    JobResult,
    QueueInfo,
    QueueStats,
    WaitResult,
)

__all__ = ["Client", "SyncClient"]

T = TypeVar("T")


class Client:
    """Async client for a Leveret gateway; use it as `async with Client(url) as client`.

    `timeout` (seconds, or an httpx.Timeout) bounds every request except `wait`, whose read
    timeout follows the wait, and `events`, which may stay open for as long as you read.
    `transport` lets tests drive an app in-process (httpx.ASGITransport).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        *,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=client_headers(api_key),
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _send(self, call: Call[T]) -> T:
        try:
            response = await self._http.send(call.build(self._http))
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.url) from exc
        return call.read(response)

    async def submit(
        self, job_type: str, payload: Any = None, **options: Unpack[SubmitOptions]
    ) -> JobInfo:
        """Submit a job of `job_type`; the new JobInfo (or, for a known `idempotency_key`, the
        existing one). Options: see SubmitOptions."""
        return await self._send(calls.submit({"type": job_type, "payload": payload, **options}))

    async def submit_batch(
        self, jobs: Sequence[Mapping[str, Any]], atomic: bool = False
    ) -> BatchResult:
        """Submit up to 1000 jobs (each a mapping with `type`, `payload` and any
        SubmitOptions); with `atomic`, all are stored or none is."""
        return await self._send(calls.submit_batch(jobs, atomic))

    async def get(self, job_id: str) -> JobInfo:
        """The job, with its payload and, once finished, its result."""
        return await self._send(calls.get(job_id))

    # `timeout` is how long the gateway waits (GopherQueue's name), not a local deadline.
    async def wait(self, job_id: str, timeout: Duration = 30) -> WaitResult:  # noqa: ASYNC109
        """Wait until the job ends or `timeout` passes (the gateway caps it at 5 minutes)."""
        return await self._send(calls.wait(job_id, timeout))

    async def list(
        self,
        *,
        state: str | None = None,
        type: str | None = None,
        queue: str | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include: Sequence[str] = (),
    ) -> JobPage:
        """One page of jobs, newest first; `include` may name "payload" and "result"."""
        return await self._send(
            calls.list_jobs(
                state=state,
                type=type,
                queue=queue,
                tags=tags,
                limit=limit,
                cursor=cursor,
                include=include,
            )
        )

    async def cancel(self, job_id: str, reason: str = "", force: bool = False) -> JobInfo:
        """Cancel the job (a running one is stopped); ConflictError if it has finished."""
        return await self._send(calls.cancel(job_id, reason, force))

    async def retry(self, job_id: str, reset_attempts: bool = False) -> JobInfo:
        """Run a failed, dead-lettered or cancelled job again."""
        return await self._send(calls.retry(job_id, reset_attempts))

    async def delete(self, job_id: str) -> None:
        """Delete the job, cancelling it first if it runs."""
        await self._send(calls.delete(job_id))

    async def get_result(self, job_id: str) -> JobResult:
        """The finished job's result; JobNotFoundError while it has none."""
        return await self._send(calls.get_result(job_id))

    async def stats(self) -> QueueStats:
        """Jobs by state, and the worker fleet."""
        return await self._send(calls.stats())

    async def queues(self) -> builtins.list[QueueInfo]:
        """Every work queue with its broker depth, consumers, DLQ depth and job counts."""
        return await self._send(calls.queues())

    async def dlq(
        self,
        *,
        queue: str | None = None,
        type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> DlqPage:
        """One page of the dead-letter queue (failed and dead-lettered jobs), newest first."""
        return await self._send(calls.dlq(queue=queue, type=type, limit=limit, cursor=cursor))

    async def dlq_retry(
        self,
        *,
        queue: str | None = None,
        type: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        """Send the matching DLQ jobs back to work; how many went."""
        return await self._send(calls.dlq_retry(queue=queue, type=type, ids=ids))

    async def dlq_purge(self, queue: str | None = None) -> int:
        """Delete the DLQ's jobs (of one queue, or all); how many were purged."""
        return await self._send(calls.dlq_purge(queue))

    async def events(
        self, job_id: str = "*", *, type: str | None = None, queue: str | None = None
    ) -> AsyncIterator[Event]:
        """Job events as they happen (`connected` first), until you stop iterating."""
        call = calls.events(job_id, type, queue)
        try:
            response = await self._http.send(call.build(self._http), stream=True)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.url) from exc
        try:
            if response.is_error:
                await response.aread()
                call.read(response)
            decoder = EventStreamDecoder()
            async for line in response.aiter_lines():
                if (event := decoder.feed(line)) is not None:
                    yield event
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.url) from exc
        finally:
            await response.aclose()


class SyncClient:
    """Blocking twin of Client, with the same methods; use it as `with SyncClient(url)`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        *,
        max_connections: int = 100,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.url,
            headers=client_headers(api_key),
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"SyncClient({self.url!r})"

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        try:
            response = self._http.send(call.build(self._http))
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.url) from exc
        return call.read(response)

    def submit(
        self, job_type: str, payload: Any = None, **options: Unpack[SubmitOptions]
    ) -> JobInfo:
        """See Client.submit."""
        return self._send(calls.submit({"type": job_type, "payload": payload, **options}))

    def submit_batch(self, jobs: Sequence[Mapping[str, Any]], atomic: bool = False) -> BatchResult:
        """See Client.submit_batch."""
        return self._send(calls.submit_batch(jobs, atomic))

    def get(self, job_id: str) -> JobInfo:
        """See Client.get."""
        return self._send(calls.get(job_id))

    def wait(self, job_id: str, timeout: Duration = 30) -> WaitResult:
        """See Client.wait."""
        return self._send(calls.wait(job_id, timeout))

    def list(
        self,
        *,
        state: str | None = None,
        type: str | None = None,
        queue: str | None = None,
        tags: Mapping[str, str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        include: Sequence[str] = (),
    ) -> JobPage:
        """See Client.list."""
        return self._send(
            calls.list_jobs(
                state=state,
                type=type,
                queue=queue,
                tags=tags,
                limit=limit,
                cursor=cursor,
                include=include,
            )
        )

    def cancel(self, job_id: str, reason: str = "", force: bool = False) -> JobInfo:
        """See Client.cancel."""
        return self._send(calls.cancel(job_id, reason, force))

    def retry(self, job_id: str, reset_attempts: bool = False) -> JobInfo:
        """See Client.retry."""
        return self._send(calls.retry(job_id, reset_attempts))

    def delete(self, job_id: str) -> None:
        """See Client.delete."""
        self._send(calls.delete(job_id))

    def get_result(self, job_id: str) -> JobResult:
        """See Client.get_result."""
        return self._send(calls.get_result(job_id))

    def stats(self) -> QueueStats:
        """See Client.stats."""
        return self._send(calls.stats())

    def queues(self) -> builtins.list[QueueInfo]:
        """See Client.queues."""
        return self._send(calls.queues())

    def dlq(
        self,
        *,
        queue: str | None = None,
        type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> DlqPage:
        """See Client.dlq."""
        return self._send(calls.dlq(queue=queue, type=type, limit=limit, cursor=cursor))

    def dlq_retry(
        self,
        *,
        queue: str | None = None,
        type: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        """See Client.dlq_retry."""
        return self._send(calls.dlq_retry(queue=queue, type=type, ids=ids))

    def dlq_purge(self, queue: str | None = None) -> int:
        """See Client.dlq_purge."""
        return self._send(calls.dlq_purge(queue))

    def events(
        self, job_id: str = "*", *, type: str | None = None, queue: str | None = None
    ) -> Iterator[Event]:
        """See Client.events; a generator; close it (or leave the loop) to disconnect."""
        call = calls.events(job_id, type, queue)
        try:
            response = self._http.send(call.build(self._http), stream=True)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.url) from exc
        try:
            if response.is_error:
                response.read()
                call.read(response)
            decoder = EventStreamDecoder()
            for line in response.iter_lines():
                if (event := decoder.feed(line)) is not None:
                    yield event
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.url) from exc
        finally:
            response.close()
