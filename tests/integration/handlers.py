"""Handlers for tests that run `leveret worker tests.integration.handlers:worker` as a process."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from leveret.workers import JobContext, Worker

worker = Worker("leveret-test-handlers")


@worker.handler("suicide")
async def suicide(ctx: JobContext, payload: Any) -> None:
    """Kill the worker process running it, the way the OOM killer would: no goodbye."""
    os.kill(os.getpid(), signal.SIGKILL)


@worker.handler("block")
def block(ctx: JobContext, payload: Any) -> None:
    """A plain function that blocks its thread for `payload` seconds and cannot be stopped."""
    time.sleep(float(payload))
