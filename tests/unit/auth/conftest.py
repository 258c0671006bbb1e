"""API keys: what the tests of the keys file, the key ring and the route guard share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def keys_path(tmp_path: Path) -> Path:
    """Where the keys file goes (its directory does not exist yet)."""
    return tmp_path / "conf" / "api-keys"
