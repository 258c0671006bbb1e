"""The topology description and the delay ladder, without a broker."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leveret.jobs.settings import QueueType
from leveret.topology import (
    DELAY_TIERS_MS,
    TIER_HEADER,
    ExchangeKind,
    Names,
    QueueOptions,
    full_topology,
    queue_topology,
    shared_topology,
    tier_for,
)

NAMES = Names("ns")


def test_tiers_are_strictly_increasing_and_end_at_a_day() -> None:
    assert list(DELAY_TIERS_MS) == sorted(set(DELAY_TIERS_MS))
    assert DELAY_TIERS_MS[-1] == 86_400_000


def test_tier_for_picks_the_largest_tier_not_longer_than_what_remains() -> None:
    assert tier_for(1_000) == 1_000
    assert tier_for(1_999) == 1_000
    assert tier_for(7 * 86_400_000) == 86_400_000  # longer than the ladder: hop day by day
    assert tier_for(30) == 100  # shorter than the ladder: the smallest tier


@given(st.integers(min_value=1, max_value=10 * 86_400_000))
def test_hopping_never_runs_early_and_overshoots_by_less_than_the_smallest_tier(
    delay_ms: int,
) -> None:
    waited, hops = 0, 0
    while waited < delay_ms:  # what the worker does each time the message arrives early
        waited += tier_for(delay_ms - waited)
        hops += 1
    assert waited >= delay_ms
    assert waited - delay_ms < DELAY_TIERS_MS[0]
    # Whole days go one tier each; what is left of a day takes at most 24 hops (the worst
    # case is a remainder just under a day), each a cheap pass through a worker.
    assert hops <= delay_ms // 86_400_000 + 24


def test_every_tier_expires_back_into_the_jobs_exchange() -> None:
    spec = shared_topology(NAMES, QueueOptions())
    tiers = {q.name: q.arguments for q in spec.queues}
    for ms in DELAY_TIERS_MS:
        arguments = tiers[NAMES.delay_queue(ms)]
        assert arguments["x-message-ttl"] == ms
        assert arguments["x-dead-letter-exchange"] == "ns.jobs"
        # No fixed routing key: an expired message keeps its own queue's.
        assert "x-dead-letter-routing-key" not in arguments
    bindings = {b.queue: b for b in spec.bindings}
    assert bindings[NAMES.delay_queue(5_000)].arguments == {"x-match": "all", TIER_HEADER: "5000"}
    assert bindings[NAMES.delay_queue(5_000)].exchange == "ns.delay"


def test_shared_exchanges_and_kinds() -> None:
    kinds = {e.name: e.kind for e in shared_topology(NAMES, QueueOptions()).exchanges}
    assert kinds == {
        "ns.jobs": ExchangeKind.DIRECT,
        "ns.delay": ExchangeKind.HEADERS,
        "ns.dlx": ExchangeKind.DIRECT,
        "ns.events": ExchangeKind.TOPIC,
        "ns.control": ExchangeKind.FANOUT,
    }


def test_classic_work_queue_has_priorities_and_a_dead_letter_exchange() -> None:
    spec = queue_topology(NAMES, "emails", QueueOptions())
    work, dlq = spec.queues
    assert work.name == "ns.q.emails"
    assert work.arguments == {
        "x-max-priority": 4,
        "x-dead-letter-exchange": "ns.dlx",
        "x-overflow": "reject-publish",
    }
    assert dlq.name == "ns.dlq.emails"
    routes = {(b.exchange, b.routing_key, b.queue) for b in spec.bindings}
    assert routes == {("ns.jobs", "emails", "ns.q.emails"), ("ns.dlx", "emails", "ns.dlq.emails")}


def test_quorum_work_queue_has_a_delivery_limit_and_no_priority_argument() -> None:
    options = QueueOptions(queue_type=QueueType.QUORUM, delivery_limit=7)
    work, dlq = queue_topology(NAMES, "emails", options).queues
    assert work.arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "ns.dlx",
        "x-overflow": "reject-publish",
        "x-delivery-limit": 7,
    }
    assert dlq.arguments == {"x-queue-type": "quorum"}


def test_full_topology_is_the_shared_part_plus_each_queue() -> None:
    spec = full_topology(NAMES, ("a", "b"), QueueOptions())
    names = [q.name for q in spec.queues]
    assert names[-4:] == ["ns.q.a", "ns.dlq.a", "ns.q.b", "ns.dlq.b"]
    assert len(names) == len(DELAY_TIERS_MS) + 4
