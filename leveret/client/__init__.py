"""The Python SDK: `Client` (async) and `SyncClient`, speaking the gateway's HTTP API.

Method names, arguments, answers and errors are GopherQueue's Python SDK's, so its users
switch by changing an import.
"""

from leveret.client.calls import DEFAULT_URL, Duration, SubmitOptions
from leveret.client.clients import Client, SyncClient
from leveret.client.models import Job

__all__ = ["DEFAULT_URL", "Client", "Duration", "Job", "SubmitOptions", "SyncClient"]
