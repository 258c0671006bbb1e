"""Talking to RabbitMQ: connections, the confirming publisher, routing, the producer."""

from broker.connection import connect
from broker.consumer import (
    consuming_channel,
    purge_queue,
    queue_depth,
    subscribe,
    unsubscribe,
)
from broker.messages import build_message, epoch_ms, job_headers, job_message
from broker.producer import Producer
from broker.publisher import Publisher
from broker.router import JobRouter
from broker.session import BrokerSession

__all__ = [
    "BrokerSession",
    "JobRouter",
    "Producer",
    "Publisher",
    "build_message",
    "connect",
    "consuming_channel",
    "epoch_ms",
    "job_headers",
    "job_message",
    "purge_queue",
    "queue_depth",
    "subscribe",
    "unsubscribe",
]
