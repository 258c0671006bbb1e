"""Handlers: the functions that run jobs, by type, with their defaults."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from leveret.jobs.backoff import Backoff
from leveret.jobs.durations import parse_duration
from leveret.jobs.errors import ConfigurationError
from leveret.jobs.model import is_valid_queue, is_valid_type

HandlerFn = Callable[..., Any]
F = TypeVar("F", bound=HandlerFn)


@dataclass(frozen=True, kw_only=True)
class Handler:
    """A registered handler: `fn(ctx, payload)`, async or plain (run in a thread pool)."""

    name: str
    fn: HandlerFn
    is_async: bool
    queue: str | None = None  # a queue the worker consumes because of this handler
    timeout: float | None = None
    max_attempts: int | None = None
    backoff: Backoff | None = None


class Registry:
    """Job type -> handler."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def add(
        self,
        fn: HandlerFn,
        name: str | None = None,
        *,
        queue: str | None = None,
        timeout: str | float | None = None,
        max_attempts: int | None = None,
        backoff: Backoff | None = None,
    ) -> Handler:
        """Register `fn` for job type `name` (default: the function's name)."""
        job_type = name or fn.__name__
        if not is_valid_type(job_type):
            raise ConfigurationError(f"job type {job_type!r} must match [A-Za-z0-9_.:-]{{1,128}}")
        if job_type in self._handlers:
            raise ConfigurationError(f"a handler for {job_type!r} is already registered")
        if queue is not None and not is_valid_queue(queue):
            raise ConfigurationError(f"queue {queue!r} must match [a-z0-9_.-]{{1,64}}")
        if max_attempts is not None and not 1 <= max_attempts <= 100:
            raise ConfigurationError("max_attempts must be between 1 and 100")
        handler = Handler(
            name=job_type,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            queue=queue,
            timeout=None if timeout is None else parse_duration(timeout),
            max_attempts=max_attempts,
            backoff=backoff,
        )
        self._handlers[job_type] = handler
        return handler

    def get(self, name: str) -> Handler | None:
        """The handler for job type `name`, or None."""
        return self._handlers.get(name)

    def queues(self) -> set[str]:
        """Queues named by handlers."""
        return {h.queue for h in self._handlers.values() if h.queue}

    def __iter__(self) -> Iterator[Handler]:
        return iter(self._handlers.values())
