"""Session-wide test hooks."""

from __future__ import annotations

import os

import pytest

from leveret.jobs.settings import mask_url


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which job stores the store contract suite runs against."""
    url = os.environ.get("LEVERET_TEST_MONGODB_URL")
    real = (
        f"a real MongoDB at {mask_url(url)}"
        if url
        else "no real MongoDB (set LEVERET_TEST_MONGODB_URL for one)"
    )
    return [
        "job store contract: SQLite (temp file); MongoDB on an in-process stand-in "
        f"(mongomock-motor), not a real MongoDB; {real}"
    ]
