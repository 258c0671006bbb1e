"""The publish side of the middleware seam: what a hook sees of a job's message before it
goes out, and may add headers to (trace context, say)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from leveret.jobs.model import Job


class PublishReason(StrEnum):
    """Why a job's message is published."""

    SUBMIT = "submit"  # a new job (or one its submitter's retry found never published)
    RELEASE = "release"  # its dependencies completed
    REPLAY = "replay"  # a user sent a finished job back (API retry, DLQ retry)
    RETRY = "retry"  # an attempt failed; the next one waits in a delay tier
    HOP = "hop"  # still early: sent on to the next delay tier, unchanged
    DEAD_LETTER = "dead_letter"  # the job failed for good: its copy in the DLQ


@dataclass(slots=True, kw_only=True)
class Publish:
    """A job's message about to be published. `headers` may be changed in place; the
    rest describes the message."""

    reason: PublishReason
    queue: str
    job_id: str | None  # from the message: absent only for an unreadable one on its way to a DLQ
    job_type: str | None
    attempt: int  # the attempt the message starts (its x-leveret-attempt header)
    headers: dict[str, Any]
    job: Job | None = None  # the job as stored, when the publisher has it at hand


class PublishHook(Protocol):
    """Called before every publish of a job's message (workers' Middleware is one)."""

    async def on_publish(self, publish: Publish) -> None:
        """Look at, or add headers to, the message about to be published."""
