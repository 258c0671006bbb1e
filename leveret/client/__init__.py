"""The Python SDK: `Client` (async) and `SyncClient`, speaking the gateway's HTTP API.

Method names, arguments, answers and errors are GopherQueue's Python SDK's, so its users
switch by changing an import. One name differs: a job as the API shows it is a `JobInfo`
(GopherQueue's `Job`), because `leveret.Job` is the engine's job, another class.
"""

from leveret.client.calls import DEFAULT_URL, Duration, SubmitOptions
from leveret.client.clients import Client, SyncClient
from leveret.client.models import JobInfo

__all__ = ["DEFAULT_URL", "Client", "Duration", "JobInfo", "SubmitOptions", "SyncClient"]
