"""One description of what RabbitMQ must hold for a set of Leveret queues.

This is the only module that spells AMQP `x-` arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from leveret.jobs.priority import MAX_AMQP_PRIORITY
from leveret.jobs.settings import QueueType
from leveret.topology.names import Names
from leveret.topology.tiers import DELAY_TIERS_MS

# The header a delayed message carries to pick its tier queue on the delay exchange. No `x-`
# prefix: a headers exchange ignores x- headers under "x-match: all", so every binding would
# match every message and each delayed message would be copied into every tier.
TIER_HEADER = "leveret-tier"


class ExchangeKind(StrEnum):
    """AMQP exchange types Leveret uses."""

    DIRECT = "direct"
    HEADERS = "headers"
    TOPIC = "topic"
    FANOUT = "fanout"


@dataclass(frozen=True)
class ExchangeSpec:
    """A durable exchange."""

    name: str
    kind: ExchangeKind


@dataclass(frozen=True)
class QueueSpec:
    """A durable queue and its arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class BindingSpec:
    """A queue bound to an exchange."""

    queue: str
    exchange: str
    routing_key: str = ""
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class TopologySpec:
    """Everything to declare, in order: exchanges, then queues, then bindings."""

    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...]
    bindings: tuple[BindingSpec, ...]


@dataclass(frozen=True)
class QueueOptions:
    """Deploy-time choices about work queues."""

    queue_type: QueueType = QueueType.CLASSIC
    delivery_limit: int = 20


# A listener (a gateway's event stream, a worker's control queue) that falls behind loses
# its oldest messages rather than filling the broker's memory.
LISTENER_ARGUMENTS: dict[str, Any] = {"x-max-length": 100_000, "x-overflow": "drop-head"}


def shared_topology(names: Names, options: QueueOptions) -> TopologySpec:
    """The exchanges and delay tiers every deployment has, whatever its queues."""
    exchanges = (
        ExchangeSpec(names.jobs_exchange, ExchangeKind.DIRECT),
        ExchangeSpec(names.delay_exchange, ExchangeKind.HEADERS),
        ExchangeSpec(names.dead_letter_exchange, ExchangeKind.DIRECT),
        ExchangeSpec(names.events_exchange, ExchangeKind.TOPIC),
        ExchangeSpec(names.control_exchange, ExchangeKind.FANOUT),
    )
    tiers = tuple(
        QueueSpec(
            names.delay_queue(ms),
            {
                **_type_arguments(options),
                "x-message-ttl": ms,
                # Expired messages go back through the jobs exchange with the routing key they
                # were published with: their own work queue's name.
                "x-dead-letter-exchange": names.jobs_exchange,
            },
        )
        for ms in DELAY_TIERS_MS
    )
    bindings = tuple(
        BindingSpec(
            names.delay_queue(ms),
            names.delay_exchange,
            arguments={"x-match": "all", TIER_HEADER: str(ms)},
        )
        for ms in DELAY_TIERS_MS
    )
    return TopologySpec(exchanges, tiers, bindings)


def queue_topology(names: Names, queue: str, options: QueueOptions) -> TopologySpec:
    """The work queue and DLQ of one Leveret queue, and their bindings."""
    work_arguments: dict[str, Any] = {
        **_type_arguments(options),
        # A message the worker rejects outright (it could not even settle it) lands in the
        # DLQ, never back in the loop.
        "x-dead-letter-exchange": names.dead_letter_exchange,
        # A length limit (an operator's policy) must refuse new jobs, which the publisher
        # sees as a nack and voids, never drop accepted ones from the head: RabbitMQ would
        # dead-letter those while the store still says `scheduled`. The argument beats a
        # policy's `overflow`.
        "x-overflow": "reject-publish",
    }
    if options.queue_type is QueueType.CLASSIC:
        work_arguments["x-max-priority"] = MAX_AMQP_PRIORITY
    else:
        # Quorum queues redeliver a crashing message forever unless limited; past the limit
        # the broker dead-letters it. They have priorities only from RabbitMQ 4.0 (two levels,
        # no argument needed); before that x-max-priority fails the declare.
        work_arguments["x-delivery-limit"] = options.delivery_limit
    queues = (
        QueueSpec(names.work_queue(queue), work_arguments),
        QueueSpec(names.dead_letter_queue(queue), _type_arguments(options)),
    )
    bindings = (
        BindingSpec(names.work_queue(queue), names.jobs_exchange, queue),
        BindingSpec(names.dead_letter_queue(queue), names.dead_letter_exchange, queue),
    )
    return TopologySpec((), queues, bindings)


def full_topology(names: Names, queues: tuple[str, ...], options: QueueOptions) -> TopologySpec:
    """The shared topology plus that of every queue in `queues`."""
    parts = [shared_topology(names, options)] + [queue_topology(names, q, options) for q in queues]
    return TopologySpec(
        tuple(e for p in parts for e in p.exchanges),
        tuple(q for p in parts for q in p.queues),
        tuple(b for p in parts for b in p.bindings),
    )


def _type_arguments(options: QueueOptions) -> dict[str, Any]:
    if options.queue_type is QueueType.QUORUM:
        return {"x-queue-type": "quorum"}
    return {}
