"""Leveret's exception tree: one root, a subtree per concern, data carried as attributes."""

from __future__ import annotations


class LeveretError(Exception):
    """Root of every error Leveret raises on purpose."""


class ConfigurationError(LeveretError):
    """A setting or argument is wrong; the message says which and how to fix it."""


class InvalidDuration(ConfigurationError, ValueError):
    """A duration is neither a number of seconds nor a string like "1h30m"."""

    def __init__(self, value: str) -> None:
        super().__init__(f"not a duration: {value!r} (use seconds or a string like '1h30m')")
        self.value = value


class InvalidJob(LeveretError, ValueError):
    """A job's field is out of range or malformed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PayloadTooLarge(InvalidJob):
    """A field is larger than the configured limit."""

    def __init__(self, field: str, size: int, limit: int) -> None:
        super().__init__(field, f"is {size} bytes; the limit is {limit}")
        self.size = size
        self.limit = limit


class JobNotFound(LeveretError, LookupError):
    """No job has this id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class WrongState(LeveretError):
    """The job's state does not allow what was asked (cancel a finished job, retry a
    running one)."""

    def __init__(self, job_id: str, state: str, action: str) -> None:
        super().__init__(f"cannot {action} job {job_id}: it is {state}")
        self.job_id = job_id
        self.state = state
        self.action = action


class MalformedMessage(LeveretError):
    """An AMQP message is not a Leveret envelope; it goes to the DLQ with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- store -------------------------------------------------------------------------------


class StoreError(LeveretError):
    """The job store failed or refused an operation."""


class StoreUnavailable(StoreError):
    """The job store cannot be reached or written."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"job store at {url} is unavailable: {detail}")
        self.url = url
        self.detail = detail


class DuplicateJob(StoreError):
    """A job with this id or idempotency key is already stored."""

    def __init__(self, job_id: str, idempotency_key: str | None = None) -> None:
        what = f"idempotency key {idempotency_key!r}" if idempotency_key else f"id {job_id}"
        super().__init__(f"a job with {what} already exists")
        self.job_id = job_id
        self.idempotency_key = idempotency_key


# --- broker and topology -----------------------------------------------------------------


class BrokerError(LeveretError):
    """Talking to RabbitMQ failed."""


class BrokerUnavailable(BrokerError):
    """RabbitMQ cannot be reached."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(
            f"RabbitMQ at {url} is unreachable ({detail}); start it with "
            "`rabbitmq-server -detached` or set LEVERET_AMQP_URL"
        )
        self.url = url
        self.detail = detail


class ConnectionDown(BrokerError):
    """The connection to RabbitMQ is lost and not back yet (it reconnects by itself)."""

    def __init__(self) -> None:
        super().__init__("the connection to RabbitMQ is down; reconnecting")


class PublishError(BrokerError):
    """The broker did not confirm a publish."""


class Unroutable(PublishError):
    """The broker returned a mandatory publish: no queue is bound for its routing key."""

    def __init__(self, exchange: str, routing_key: str) -> None:
        super().__init__(f"no queue bound to {exchange!r} for routing key {routing_key!r}")
        self.exchange = exchange
        self.routing_key = routing_key


class PublishTimeout(PublishError):
    """The broker neither confirmed nor refused a publish in time (often: a blocked broker)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"publish not confirmed within {timeout:g}s")
        self.timeout = timeout


class PublishNacked(PublishError):
    """The broker refused a publish (basic.nack)."""


class ConsumerLost(BrokerError):
    """A worker's consumer on a queue is gone and did not come back (was the queue deleted?)."""

    def __init__(self, queue: str) -> None:
        super().__init__(
            f"the worker lost its consumer on {queue!r} and could not get it back (was the "
            "queue deleted?); exiting so that a supervisor restarts it"
        )
        self.queue = queue


class TopologyError(BrokerError):
    """RabbitMQ's exchanges or queues are not what Leveret declares."""


class TopologyMismatch(TopologyError):
    """An existing queue or exchange was declared with different arguments."""

    def __init__(self, name: str, argument: str | None, detail: str) -> None:
        arg = f" argument {argument!r}" if argument else ""
        super().__init__(
            f"{name!r} exists with different{arg} ({detail}); delete it or change the setting"
        )
        self.name = name
        self.argument = argument
        self.detail = detail


# --- handlers ----------------------------------------------------------------------------


class HandlerError(LeveretError):
    """Raised by a handler to steer what happens to its job."""


class Retry(HandlerError):
    """Run this job again after `delay` seconds (None: the job's backoff); counts an attempt."""

    def __init__(self, message: str = "retry requested", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Reject(HandlerError):
    """Fail this job permanently, without retrying; it goes to the DLQ with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
