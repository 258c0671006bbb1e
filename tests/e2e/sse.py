"""A raw server-sent-events reader for the e2e tests: frames as the bytes on the wire, so
that tests can check the framing itself (field order, one-line data), not only the SDK's view
of it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

FRAME_TIMEOUT = 15.0


@dataclass(frozen=True)
class Frame:
    """One SSE frame: its raw bytes (without the blank line ending it) and its fields."""

    raw: bytes
    lines: tuple[str, ...]

    def field(self, name: str) -> str | None:
        """The value of the first `name:` line, if any."""
        prefix = f"{name}:"
        for line in self.lines:
            if line.startswith(prefix):
                return line[len(prefix) :].removeprefix(" ")
        return None

    @property
    def event(self) -> str | None:
        """The `event:` field."""
        return self.field("event")

    @property
    def id(self) -> str | None:
        """The `id:` field."""
        return self.field("id")

    @property
    def is_comment(self) -> bool:
        """Whether the frame holds only comments (a keepalive)."""
        return all(line.startswith(":") for line in self.lines)

    def data(self) -> Any:
        """The `data:` field, parsed as JSON."""
        raw = self.field("data")
        assert raw is not None, f"frame without data: {self.raw!r}"
        return json.loads(raw)


class FrameReader:
    """Reads frames off a streaming response, each read bounded by a timeout."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_bytes()
        self._buffer = b""

    async def next(self, timeout: float = FRAME_TIMEOUT) -> Frame:
        """The next frame; AssertionError if none arrives within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while b"\n\n" not in self._buffer:
                    self._buffer += await anext(self._chunks)
        except TimeoutError:
            raise AssertionError(f"no SSE frame within {timeout:g}s") from None
        raw, _, self._buffer = self._buffer.partition(b"\n\n")
        return Frame(raw=raw, lines=tuple(raw.decode().split("\n")))

    async def until(
        self, accept: Callable[[Frame], bool], *, timeout: float = FRAME_TIMEOUT
    ) -> list[Frame]:
        """Every frame up to and including the first that `accept` holds for; fails when
        that takes longer than `timeout` seconds in all."""
        seen: list[Frame] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no matching SSE frame within {timeout:g}s: {seen!r}")
            frame = await self.next(left)
            seen.append(frame)
            if accept(frame):
                return seen


@asynccontextmanager
async def open_events(base_url: str, **params: str) -> AsyncIterator[FrameReader]:
    """`GET /api/v1/events` with `params`, as a FrameReader; the stream closes on exit."""
    timeout = httpx.Timeout(10.0, read=None)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=timeout) as http,
        http.stream("GET", "/api/v1/events", params=params) as response,
    ):
        assert response.status_code == 200, response.status_code
        yield FrameReader(response)


def job_frames(frames: list[Frame], job_id: str) -> list[Frame]:
    """The `job.*` frames about `job_id`."""
    return [
        f for f in frames if (f.event or "").startswith("job.") and f.data().get("id") == job_id
    ]
