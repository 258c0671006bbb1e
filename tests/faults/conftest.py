"""Fault-injection fixtures: the integration suite's namespace, store, session and worker
processes, reused so that every fault test starts from the same clean ground."""

from __future__ import annotations

import pytest

# The soak's helpers assert too; rewritten, their failures show the values involved.
pytest.register_assert_rewrite(
    "tests.faults.soak_checks", "tests.faults.soak_fleet", "tests.faults.soak_load"
)

from tests.integration.conftest import (  # noqa: E402 - after the rewrite hook, on purpose
    _rabbitmq,
    namespace,
    producer,
    session,
    settings,
    store,
    store_url,
    worker_processes,
)

__all__ = [
    "_rabbitmq",
    "namespace",
    "producer",
    "session",
    "settings",
    "store",
    "store_url",
    "worker_processes",
]
