"""The errors the SDK raises: one class per API error code, all under LeveretClientError.

The names follow GopherQueue's SDK (`GopherQueueError`, `JobNotFoundError`, `ValidationError`,
`AuthenticationError`) so that its users' `except` clauses keep working after the switch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import msgspec

from leveret.jobs.errors import LeveretError


class LeveretClientError(LeveretError):
    """Root of every SDK error: the gateway answered with an error, or did not answer."""

    def __init__(
        self,
        message: str,
        code: str = "unknown",
        *,
        status: int | None = None,
        details: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details
        self.request_id = request_id

    def __str__(self) -> str:
        where = [str(self.status)] if self.status is not None else []
        where.append(self.code)
        if self.request_id:
            where.append(f"request {self.request_id}")
        return f"{self.message} ({', '.join(where)})"


# GopherQueue's name for the root, so that `except GopherQueueError` ports unchanged.
GopherQueueError = LeveretClientError


class ValidationError(LeveretClientError):
    """The request was malformed or a field is out of range (400/422); `field` names it."""

    @property
    def field(self) -> str | None:
        """The offending field, when the gateway named one in `details`."""
        if isinstance(self.details, dict):
            named = self.details.get("field")
            return named if isinstance(named, str) else None
        return None


class AuthenticationError(LeveretClientError):
    """The API key is missing or unknown (401)."""


class PermissionDeniedError(LeveretClientError):
    """The API key's role does not allow this (403)."""


class JobNotFoundError(LeveretClientError):
    """No such job, or (from `get_result`) the job has no result yet (404)."""

    def __init__(
        self,
        message: str,
        code: str = "not_found",
        *,
        job_id: str | None = None,
        status: int | None = 404,
        details: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code, status=status, details=details, request_id=request_id)
        self.job_id = job_id


class ConflictError(LeveretClientError):
    """The job's state forbids this: cancelling a finished job, retrying a running one (409)."""


class PayloadTooLargeError(LeveretClientError):
    """The body is over the gateway's size limit (413)."""


class ServerError(LeveretClientError):
    """The gateway failed (5xx); never carries a traceback."""


class ServiceUnavailableError(ServerError):
    """The gateway cannot serve now (503); try again after `retry_after` seconds."""

    def __init__(
        self,
        message: str,
        code: str = "unavailable",
        *,
        retry_after: float | None = None,
        status: int | None = 503,
        details: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code, status=status, details=details, request_id=request_id)
        self.retry_after = retry_after


class GatewayConnectionError(LeveretClientError, ConnectionError):
    """The gateway could not be reached, or the connection broke mid-answer."""


class RequestTimeoutError(LeveretClientError, TimeoutError):
    """The gateway took longer to answer than the client's timeout."""


class UnexpectedResponseError(LeveretClientError):
    """The gateway answered with a body the SDK cannot read (a proxy's page, a newer shape)."""


_BY_CODE: dict[str, type[LeveretClientError]] = {
    "invalid_request": ValidationError,
    "validation_error": ValidationError,
    "unauthorized": AuthenticationError,
    "forbidden": PermissionDeniedError,
    "not_found": JobNotFoundError,
    "conflict": ConflictError,
    "payload_too_large": PayloadTooLargeError,
    "unavailable": ServiceUnavailableError,
    "internal_error": ServerError,
}

# For answers without our error body (a proxy in between, a crash before the handler).
_BY_STATUS: dict[int, type[LeveretClientError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: JobNotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    503: ServiceUnavailableError,
}

_FALLBACK_CODE: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    503: "unavailable",
}


class _ErrorBody(msgspec.Struct):
    code: str
    message: str = ""
    details: Any = None


class _ErrorAnswer(msgspec.Struct):
    error: _ErrorBody


def error_from_response(
    response: httpx.Response, *, job_id: str | None = None
) -> LeveretClientError:
    """The error an error answer (status >= 400) stands for, chosen by its `code`, else by
    its status. `job_id` is the job the request was about, for JobNotFoundError."""
    status = response.status_code
    try:
        body = msgspec.json.decode(response.content, type=_ErrorAnswer).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        body = _ErrorBody(
            code=_FALLBACK_CODE.get(status, "internal_error" if status >= 500 else "unknown"),
            message=response.text.strip()[:200] or response.reason_phrase or f"HTTP {status}",
        )
    kind = _BY_CODE.get(body.code) or _BY_STATUS.get(status)
    if kind is None:
        kind = ServerError if status >= 500 else LeveretClientError
    common: dict[str, Any] = {
        "status": status,
        "details": body.details,
        "request_id": response.headers.get("x-request-id"),
    }
    if kind is JobNotFoundError:
        return JobNotFoundError(body.message, body.code, job_id=job_id, **common)
    if kind is ServiceUnavailableError:
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return ServiceUnavailableError(body.message, body.code, retry_after=retry_after, **common)
    return kind(body.message, body.code, **common)


def error_from_transport(error: httpx.TransportError, url: str) -> LeveretClientError:
    """The SDK error for a request that got no answer from the gateway at `url`."""
    # A connect timeout means nothing listens (or a firewall drops): unreachable, not slow.
    if isinstance(error, httpx.TimeoutException) and not isinstance(error, httpx.ConnectTimeout):
        return RequestTimeoutError(f"no answer from {url} in time: {error}", "timeout")
    return GatewayConnectionError(f"cannot reach the gateway at {url}: {error}", "unreachable")


def retry_after_seconds(header: str | None) -> float | None:
    """Seconds in a `Retry-After` header: a number of seconds or an HTTP date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
