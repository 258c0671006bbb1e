"""The delay ladder: one TTL queue per delay, and how a delay is split across them.

RabbitMQ expires messages only from the head of a queue, so a queue holding mixed delays
would make a short delay wait behind a long one. Every tier queue therefore holds exactly one
delay (its x-message-ttl), and a delay that is no tier hops: it waits in the largest tier not
longer than what remains, and the worker that receives it early sends it on.
"""

from __future__ import annotations

DELAY_TIERS_MS: tuple[int, ...] = (
    100,
    250,
    500,
    1_000,
    2_000,
    5_000,
    15_000,
    30_000,
    60_000,
    300_000,
    900_000,
    1_800_000,
    3_600_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
)


def tier_for(remaining_ms: int) -> int:
    """The tier to wait in with `remaining_ms` to go: the largest not longer, else the least."""
    chosen = DELAY_TIERS_MS[0]
    for tier in DELAY_TIERS_MS:
        if tier > remaining_ms:
            break
        chosen = tier
    return chosen
