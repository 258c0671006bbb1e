"""What a running gateway holds: the store, the broker session, the event hub, the keys."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from litestar.datastructures import State

from leveret.broker import BrokerSession, Producer
from leveret.broker.actions import JobActions
from leveret.gateway.hub import EventHub
from leveret.gateway.keys import KeyRing
from leveret.jobs.settings import Settings
from leveret.jobs.store import JobStore, store_from_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gateway:
    """Everything a request handler may need, opened once per process."""

    settings: Settings
    store: JobStore
    session: BrokerSession
    producer: Producer
    actions: JobActions
    hub: EventHub
    keys: KeyRing


@asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """Load the keys, open the store and RabbitMQ, start listening to events; close all on
    exit. Raises ConfigurationError, StoreUnavailable or BrokerUnavailable, in one line."""
    keys = KeyRing(settings.api_keys_file)
    if keys.open:
        log.warning(
            "no API keys configured (LEVERET_API_KEYS_FILE): the API is open to anyone who "
            "can reach %s",
            settings.http,
        )
    store = store_from_url(settings.store_url)
    await store.open()
    try:
        async with BrokerSession.open(settings, name="leveret-gateway") as session:
            for queue in settings.queues:  # so that no submit pays for declaring them
                await session.router.ensure_queue(queue)
            hub = EventHub(session)
            await hub.open()
            producer = Producer(store, session)
            try:
                yield Gateway(settings, store, session, producer, JobActions(producer), hub, keys)
            finally:
                hub.close()
    finally:
        await store.close()


def provide_gateway(state: State) -> Gateway:
    """The gateway of this app (a Litestar dependency)."""
    gateway = state["gateway"]
    assert isinstance(gateway, Gateway)
    return gateway
