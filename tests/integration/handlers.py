"""Handlers for tests that run `leveret worker tests.integration.handlers:worker` as a process."""

from __future__ import annotations

import os
import signal
from typing import Any

from workers import JobContext, Worker

worker = Worker("leveret-test-handlers")


@worker.handler("suicide")
async def suicide(ctx: JobContext, payload: Any) -> None:
    """Kill the worker process running it, the way the OOM killer would: no goodbye."""
    os.kill(os.getpid(), signal.SIGKILL)
