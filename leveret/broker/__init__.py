"""Talking to RabbitMQ: connections, the confirming publisher, routing, the producer."""

from leveret.broker.connection import connect
from leveret.broker.consumer import (
    consuming_channel,
    purge_queue,
    queue_depth,
    subscribe,
    unsubscribe,
)
from leveret.broker.messages import build_message, epoch_ms, job_headers, job_message
from leveret.broker.producer import Producer
from leveret.broker.publisher import Publisher
from leveret.broker.router import JobRouter
from leveret.broker.session import BrokerSession

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
