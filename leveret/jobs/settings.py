"""The one settings object, built from LEVERET_* environment variables and CLI flags."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from leveret.jobs.durations import parse_duration
from leveret.jobs.errors import ConfigurationError
from leveret.jobs.rules import is_valid_queue


class QueueType(StrEnum):
    """The kind of RabbitMQ queue that holds work; chosen at deploy time."""

    CLASSIC = "classic"  # one node, five priority levels: the default
    QUORUM = "quorum"  # replicated; priorities only where the broker has them (4.0+)


def mask_url(url: str) -> str:
    """`url` with its password replaced by ***, for logs and repr."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything Leveret's processes are configured by. Each field has an environment
    variable LEVERET_<NAME> and a CLI flag --<name>; flags win."""

    amqp_url: str = field(default="amqp://guest:guest@127.0.0.1:5672/", repr=False)
    """RabbitMQ to connect to."""
    store_url: str = field(default="sqlite:///./data/leveret.db", repr=False)
    """Job store: sqlite:///path or mongodb://host/db."""
    namespace: str = "leveret"
    """Prefix of every exchange and queue name, so several deployments share a broker."""
    http: str = "127.0.0.1:8080"
    """Where the gateway listens (host:port)."""
    api_keys_file: str | None = None
    """File of hashed API keys; none means an open API."""
    queues: tuple[str, ...] = ("default",)
    """Work queues a worker consumes."""
    queue_type: QueueType = QueueType.CLASSIC
    """Kind of work queue: classic (priorities) or quorum (replicated)."""
    delivery_limit: int = 20
    """Quorum queues only: deliveries after which the broker dead-letters a message."""
    concurrency: int = 8
    """Jobs a worker process runs at once."""
    prefetch: int | None = None
    """Unacked messages a worker holds; default concurrency x 2 so priorities still bite."""
    shutdown_timeout: float = 30.0
    """Seconds a stopping worker lets running jobs finish before handing them back."""
    publish_timeout: float = 10.0
    """Seconds to wait for the broker to confirm a publish."""
    default_timeout: float = 600.0
    """Seconds a job may run when neither it nor its handler says otherwise."""
    consumer_timeout: float = 1800.0
    """The broker's consumer_timeout (seconds); no job may be allowed to run longer."""
    max_payload: int = 1 << 20
    """Bytes a job's payload may take (msgpack-encoded); larger is refused with 413."""
    max_result: int = 1 << 20
    """Bytes a job's result may take; a larger result fails the job permanently."""
    max_batch: int = 1000
    """Jobs one batch submission may hold."""
    max_body: int = 16 << 20
    """Bytes one HTTP request body may take."""
    cors_origins: tuple[str, ...] = ()
    """Origins the gateway allows cross-origin requests from; none by default."""

    def __post_init__(self) -> None:
        if not self.namespace or not all(c.isalnum() or c in "-_." for c in self.namespace):
            raise ConfigurationError(f"namespace {self.namespace!r}: use letters, digits, -_.")
        bad = [q for q in self.queues if not is_valid_queue(q)]
        if not self.queues or bad:
            raise ConfigurationError(
                f"queues {list(self.queues)!r}: names must match [a-z0-9_.-]{{1,64}}"
            )
        if self.delivery_limit < 1:
            raise ConfigurationError("delivery_limit must be at least 1")
        if self.concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        if self.prefetch is not None and self.prefetch < 1:
            raise ConfigurationError("prefetch must be at least 1")
        if min(self.max_payload, self.max_result, self.max_batch, self.max_body) < 1:
            raise ConfigurationError(
                "max_payload, max_result, max_batch, max_body must be positive"
            )
        if self.default_timeout > self.consumer_timeout:
            raise ConfigurationError("default_timeout must not exceed consumer_timeout")

    @property
    def effective_prefetch(self) -> int:
        """The prefetch actually used: the setting, or concurrency x 2."""
        return self.prefetch or self.concurrency * 2

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.repr}
        shown["amqp_url"] = mask_url(self.amqp_url)
        shown["store_url"] = mask_url(self.store_url)
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **flags: Any) -> Settings:
        """Settings from `environ` (default os.environ), then `flags` (None values ignored)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"LEVERET_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw)
        for name, value in flags.items():
            if name not in _FIELD_NAMES:
                raise ConfigurationError(f"unknown setting {name!r}")
            if value is not None:
                values[name] = _parse(name, value) if isinstance(value, str) else value
        return cls(**values)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(Settings))
_SECONDS = {"shutdown_timeout", "publish_timeout", "default_timeout", "consumer_timeout"}
_INTS = {
    "concurrency",
    "prefetch",
    "delivery_limit",
    "max_payload",
    "max_result",
    "max_batch",
    "max_body",
}


def _parse(name: str, raw: str) -> Any:
    try:
        if name in _SECONDS:
            return parse_duration(raw)
        if name in _INTS:
            return int(raw)
        if name in ("queues", "cors_origins"):
            return tuple(q.strip() for q in raw.split(",") if q.strip())
        if name == "queue_type":
            return QueueType(raw.lower())
    except ValueError:
        raise ConfigurationError(f"LEVERET_{name.upper()}: invalid value {raw!r}") from None
    return raw
