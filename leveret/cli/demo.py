"""Demo handlers: what `leveret worker` runs with no module given, and what tests rely on."""

from __future__ import annotations

import asyncio
from typing import Any

from leveret.jobs.errors import Reject
from leveret.workers import JobContext, Worker

worker = Worker("leveret-demo")


def _number(payload: Any, name: str, default: float) -> float:
    value = payload.get(name, default) if isinstance(payload, dict) else default
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise Reject(f"payload.{name} must be a non-negative number")
    return float(value)


@worker.handler("echo")
async def echo(ctx: JobContext, payload: Any) -> Any:
    """Return the payload unchanged."""
    return payload


@worker.handler("sleep")
async def sleep(ctx: JobContext, payload: Any) -> dict[str, float]:
    """Sleep `payload.seconds` (cancellably), reporting progress; return {"slept": seconds}."""
    seconds = _number(payload, "seconds", 1.0)
    steps = max(1, min(100, int(seconds * 10)))
    for step in range(steps):
        await asyncio.sleep(seconds / steps)
        ctx.progress(100.0 * (step + 1) / steps)
    return {"slept": seconds}


@worker.handler("fail")
async def fail(ctx: JobContext, payload: Any) -> None:
    """Always fail with a retryable error carrying `payload.message`."""
    message = (
        payload.get("message", "demo failure") if isinstance(payload, dict) else "demo failure"
    )
    raise RuntimeError(str(message))


@worker.handler("flaky")
async def flaky(ctx: JobContext, payload: Any) -> dict[str, int]:
    """Fail the first `payload.fail_times` attempts, then return {"attempt": k}."""
    fail_times = int(_number(payload, "fail_times", 1))
    if ctx.attempt <= fail_times:
        raise RuntimeError(f"flaky failure on attempt {ctx.attempt} of {fail_times} planned")
    return {"attempt": ctx.attempt}


@worker.handler("reject")
async def reject(ctx: JobContext, payload: Any) -> None:
    """Fail permanently (no retry): the job goes to the DLQ as failed."""
    reason = payload.get("reason") if isinstance(payload, dict) else None
    raise Reject(str(reason or "rejected by the demo handler"))


@worker.handler("fib")
def fib(ctx: JobContext, payload: Any) -> int:
    """The n-th Fibonacci number, the slow recursive way: a CPU-bound job (n <= 35)."""
    n = int(_number(payload, "n", 20))
    if n > 35:
        raise Reject("payload.n must be between 0 and 35")
    return _fib(n)


def _fib(n: int) -> int:
    return n if n < 2 else _fib(n - 1) + _fib(n - 2)
