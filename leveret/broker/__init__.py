"""Talking to RabbitMQ: connections, the confirming publisher, routing, the producer, and
consuming. aio-pika and aiormq are imported here and nowhere else."""

from leveret.broker.connection import connect
from leveret.broker.consumer import Consumer, OnDelivery, purge_queue, queue_depth
from leveret.broker.delivery import Delivery
from leveret.broker.hooks import Publish, PublishHook, PublishReason
from leveret.broker.messages import (
    OutgoingMessage,
    build_message,
    epoch_ms,
    job_headers,
    job_message,
)
from leveret.broker.producer import Producer
from leveret.broker.publisher import Publisher
from leveret.broker.router import JobRouter
from leveret.broker.session import BrokerSession

__all__ = [
    "BrokerSession",
    "Consumer",
    "Delivery",
    "JobRouter",
    "OnDelivery",
    "OutgoingMessage",
    "Producer",
    "Publish",
    "PublishHook",
    "PublishReason",
    "Publisher",
    "build_message",
    "connect",
    "epoch_ms",
    "job_headers",
    "job_message",
    "purge_queue",
    "queue_depth",
]
