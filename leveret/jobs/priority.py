"""Job priorities and their mapping onto AMQP message priorities."""

from __future__ import annotations

from enum import IntEnum


class Priority(IntEnum):
    """How urgent a job is; lower runs first (GopherQueue's scale)."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3
    BULK = 4


MAX_AMQP_PRIORITY = int(Priority.BULK)


def to_amqp(priority: int) -> int:
    """The AMQP `priority` property for a job priority: AMQP runs higher numbers first."""
    return MAX_AMQP_PRIORITY - int(Priority(priority))


def from_amqp(amqp_priority: int | None) -> Priority:
    """The job priority an AMQP `priority` property stands for (missing or out of range clamps)."""
    if amqp_priority is None:
        return Priority.NORMAL
    return Priority(MAX_AMQP_PRIORITY - max(0, min(MAX_AMQP_PRIORITY, amqp_priority)))
