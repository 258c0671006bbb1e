"""What RabbitMQ looks like for Leveret: names, delay tiers, and one description of it all
(declared on the broker by `leveret.broker.declare`)."""

from leveret.topology.description import (
    LISTENER_ARGUMENTS,
    TIER_HEADER,
    BindingSpec,
    ExchangeKind,
    ExchangeSpec,
    QueueOptions,
    QueueSpec,
    TopologySpec,
    full_topology,
    queue_topology,
    shared_topology,
)
from leveret.topology.names import Names
from leveret.topology.tiers import DELAY_TIERS_MS, tier_for

__all__ = [
    "DELAY_TIERS_MS",
    "LISTENER_ARGUMENTS",
    "TIER_HEADER",
    "BindingSpec",
    "ExchangeKind",
    "ExchangeSpec",
    "Names",
    "QueueOptions",
    "QueueSpec",
    "TopologySpec",
    "full_topology",
    "queue_topology",
    "shared_topology",
    "tier_for",
]
