"""`leveret topology show|declare`: what Leveret declares on RabbitMQ."""

from __future__ import annotations
