"""Handlers: the functions that run jobs, by type, with their defaults."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from leveret.jobs.backoff import Backoff
from leveret.jobs.durations import parse_duration
from leveret.jobs.errors import ConfigurationError, InvalidJob
from leveret.jobs.rules import (
    QUEUE_RULE,
    TYPE_RULE,
    check_max_attempts,
    check_timeout,
    is_valid_queue,
    is_valid_type,
)

HandlerFn = Callable[..., Any]


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
        if job_type in self._handlers:
            raise ConfigurationError(f"a handler for {job_type!r} is already registered")
        try:
            if not is_valid_type(job_type):
                raise InvalidJob("type", TYPE_RULE)
            if queue is not None and not is_valid_queue(queue):
                raise InvalidJob("queue", QUEUE_RULE)
            check_max_attempts(max_attempts)
            seconds = None if timeout is None else parse_duration(timeout)
            check_timeout(seconds)
        except InvalidJob as exc:
            raise ConfigurationError(f"handler {job_type!r}: {exc}") from None
        handler = Handler(
            name=job_type,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            queue=queue,
            timeout=seconds,
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
