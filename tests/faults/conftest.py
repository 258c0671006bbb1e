"""Fault-injection fixtures: the integration suite's namespace, store, session and worker
processes, reused so that every fault test starts from the same clean ground."""

from __future__ import annotations

from tests.integration.conftest import (
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
