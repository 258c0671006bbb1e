"""The HTTP load generator, run as its own process: POST the same small JSON job to a URL
N times with C requests in flight, each lane on its own kept-alive connection.

    python -m bench.load URL JOBS CONCURRENCY [raw|httpx]

Prints one JSON line: {"accepted", "statuses", "errors", "started", "finished"} (epoch
seconds; `accepted` counts 200 and 201 answers).

The default client is a minimal HTTP/1.1 one on asyncio streams. httpx was the first
choice, but on this kind of machine it is the bottleneck: against uvicorn answering a GET
with no work behind it, 64 lanes sharing one httpx.AsyncClient did ~200 requests/s, 64
clients of one connection each ~550/s, and these raw lanes ~5,000/s. A load generator that
slow would measure itself, not the server. `httpx` remains selectable.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from urllib.parse import urlsplit

import httpx
import msgspec

from bench import eventloop
from bench.handlers import NOOP

BODY = msgspec.json.encode({"type": NOOP})
TIMEOUT = 30.0

Post = Callable[[], Awaitable[int]]


class Load(msgspec.Struct):
    """What the load generator saw."""

    accepted: int
    statuses: dict[str, int]
    errors: list[str]
    started: float
    finished: float
    cpu: float
    """CPU seconds this process spent sending (start-up excluded)."""

    @property
    def rate(self) -> float:
        """Accepted requests per second."""
        return self.accepted / max(self.finished - self.started, 1e-9)

    @property
    def refused(self) -> int:
        """Requests answered otherwise than 200/201, or not answered at all."""
        answered = sum(n for status, n in self.statuses.items() if status not in ("200", "201"))
        return answered + len(self.errors)


class RawLane:
    """One kept-alive HTTP/1.1 connection posting BODY to one path."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.request = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
        ).encode() + BODY
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> int:
        """Send the request, read the whole answer; its status code."""
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                self.close()
        if self.reader is not None:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        """Drop the connection; the next post opens another."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def hammer(url: str, jobs: int, concurrency: int, client: str = "raw") -> Load:
    """Send `jobs` requests to `url`, `concurrency` at a time."""
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    tickets = iter(range(jobs))

    async def raw_lane() -> None:
        lane = RawLane(url)
        try:
            await _drive(lane.post, tickets, statuses, errors, on_error=lane.close)
        finally:
            lane.close()

    async def httpx_lane() -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:

            async def post() -> int:
                response = await http.post(
                    url, content=BODY, headers={"content-type": "application/json"}
                )
                return response.status_code

            await _drive(post, tickets, statuses, errors)

    lane = raw_lane if client == "raw" else httpx_lane
    started, cpu = time.time(), time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    finished, cpu = time.time(), time.process_time() - cpu
    accepted = statuses["200"] + statuses["201"]
    return Load(accepted, dict(statuses), errors, started, finished, cpu)


async def _drive(
    post: Post,
    tickets: Iterator[int],
    statuses: Counter[str],
    errors: list[str],
    *,
    on_error: Callable[[], None] | None = None,
) -> None:
    for _ in tickets:
        try:
            async with asyncio.timeout(TIMEOUT):
                statuses[str(await post())] += 1
        except (
            OSError,
            TimeoutError,
            ValueError,
            asyncio.IncompleteReadError,
            httpx.HTTPError,
        ) as exc:
            errors.append(repr(exc))
            if on_error is not None:
                on_error()


if __name__ == "__main__":
    target, count, lanes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    kind = sys.argv[4] if len(sys.argv) > 4 else "raw"
    result = eventloop.run(hammer(target, count, lanes, kind))
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
