"""The HTTP gateway: GopherQueue's API over Leveret, as a Litestar app.

The app and its resources are imported on first use, so that `gateway.keys` (what the
`leveret keys` command needs) loads without the web framework.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leveret.gateway.app import create_app
    from leveret.gateway.resources import Gateway, open_gateway

__all__ = ["Gateway", "create_app", "open_gateway"]

_HOMES = {
    "create_app": "leveret.gateway.app",
    "Gateway": "leveret.gateway.resources",
    "open_gateway": "leveret.gateway.resources",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'leveret.gateway' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
