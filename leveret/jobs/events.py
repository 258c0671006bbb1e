"""Job events: what the events exchange carries every time a job changes state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

from leveret.jobs.model import Job, new_job_id, utcnow
from leveret.jobs.states import JobState


class EventName(StrEnum):
    """What happened to a job; the SSE event is `job.<name>` (GopherQueue's names)."""

    CREATED = "created"  # stored and sent on its way (or pending on its dependencies)
    STARTED = "started"  # a worker began an attempt
    PROGRESS = "progress"  # the handler reported progress
    COMPLETED = "completed"  # the handler returned
    RETRYING = "retrying"  # an attempt failed; the next one waits in a delay tier
    FAILED = "failed"  # permanent error: in the DLQ
    DEAD_LETTERED = "dead_lettered"  # attempts exhausted: in the DLQ
    CANCELLED = "cancelled"  # cancelled by a user, or a dependency can no longer complete
    RETRIED = "retried"  # sent back to its queue by a user (API or DLQ retry)
    DELETED = "deleted"  # removed from the store
    SCHEDULED = "scheduled"  # released by its dependencies, or handed back at shutdown


# The event a transition into each state announces.
_BY_STATE: dict[JobState, EventName] = {
    JobState.SCHEDULED: EventName.SCHEDULED,
    JobState.RUNNING: EventName.STARTED,
    JobState.COMPLETED: EventName.COMPLETED,
    JobState.RETRYING: EventName.RETRYING,
    JobState.FAILED: EventName.FAILED,
    JobState.DEAD_LETTER: EventName.DEAD_LETTERED,
    JobState.CANCELLED: EventName.CANCELLED,
}

# Heavy fields stay out of events: a subscriber that wants them reads the job.
_LEFT_OUT = {"payload": None, "result": None, "checkpoint": None}


def event_for(state: JobState) -> EventName | None:
    """The event that a move into `state` announces (None for pending and delayed, which
    only a submission produces, as `created`)."""
    return _BY_STATE.get(state)


class JobEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One change of one job: its name, and the job as it stood right after, without
    payload, result and checkpoint."""

    id: str
    name: EventName
    job: Job
    at: datetime

    @classmethod
    def of(cls, name: EventName, job: Job) -> JobEvent:
        """The event `name` for `job`, with a fresh, time-ordered id."""
        light = msgspec.structs.replace(job, **_LEFT_OUT)
        return cls(id=new_job_id(), name=name, job=light, at=utcnow())
