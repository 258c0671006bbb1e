"""Job stores: the protocol, the embedded SQLite store and the MongoDB store."""

from __future__ import annotations

from leveret.jobs.errors import ConfigurationError
from leveret.jobs.store.protocol import JobPage, JobQuery, JobStore
from leveret.jobs.store.sqlite import SQLiteStore

__all__ = ["JobPage", "JobQuery", "JobStore", "SQLiteStore", "store_from_url"]


def store_from_url(url: str) -> JobStore:
    """The store a URL names: `sqlite:///path` or `mongodb://…/database` (not yet opened)."""
    if url.startswith("sqlite:"):
        return SQLiteStore.from_url(url)
    if url.startswith(("mongodb:", "mongodb+srv:")):
        from leveret.jobs.store.mongo import MongoStore  # imported only when asked for

        return MongoStore.from_url(url)
    raise ConfigurationError(f"store URL {url!r}: use sqlite:///path or mongodb://host/db")
