"""The message every scenario moves: the envelope of a no-op job, or raw bytes as large."""

from __future__ import annotations

import struct
import time

import aio_pika

from bench.handlers import NOOP
from leveret.broker import job_message
from leveret.jobs import new_job_id
from leveret.jobs.envelope import Envelope
from leveret.jobs.submission import Submission

_STAMP = struct.Struct("!d")


def noop_message() -> aio_pika.Message:
    """The message Leveret publishes for a fresh no-op job (a new id each call)."""
    job = Submission(type=NOOP).to_job()
    return job_message(Envelope.of(job), attempt=1)


def bare_message() -> aio_pika.Message:
    """What the bare endpoint publishes: a no-op job's envelope, as a worker expects it,
    without the job ever being stored (the worker records it on first delivery)."""
    return job_message(Envelope(id=new_job_id(), type=NOOP, queue="default", priority=2), attempt=1)


class RawMessages:
    """Raw messages as large as a no-op job's, with the same properties; the body starts
    with the publish time, so that a consumer can tell each message's latency."""

    def __init__(self) -> None:
        sample = noop_message()
        self.size = len(sample.body)
        self._padding = bytes(self.size - _STAMP.size)
        self._headers = dict(sample.headers or {})
        self._content_type = sample.content_type

    def make(self) -> aio_pika.Message:
        """A message stamped now."""
        return aio_pika.Message(
            _STAMP.pack(time.time()) + self._padding,
            content_type=self._content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=self._headers,
        )


def stamped_at(body: bytes) -> float:
    """The publish time (epoch seconds) a raw message carries."""
    stamp: float = _STAMP.unpack_from(body)[0]
    return stamp
