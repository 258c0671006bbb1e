"""The HTTP gateway: GopherQueue's API over Leveret, as a Litestar app."""

from gateway.app import create_app
from gateway.resources import Gateway, open_gateway

__all__ = ["Gateway", "create_app", "open_gateway"]
