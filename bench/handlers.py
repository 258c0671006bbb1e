"""The benchmark's worker: `leveret worker bench.handlers:worker`, one no-op handler."""

from __future__ import annotations

from typing import Any

from leveret.workers import JobContext, Worker

NOOP = "noop"
"""The job type every scenario submits."""

worker = Worker("leveret-bench")


@worker.handler(NOOP)
async def noop(ctx: JobContext, payload: Any) -> None:
    """Do nothing: what is measured is the engine around the handler."""
