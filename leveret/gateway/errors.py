"""Errors at the HTTP edge: the API's error body, and every exception translated to it in
one place (domain errors to 404/409/503, Litestar's own to their codes, the rest to 500)."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ExceptionHandlersMap

from leveret.gateway.views import ErrorBody, ErrorResponse
from leveret.jobs.errors import (
    BrokerError,
    DuplicateJob,
    InvalidJob,
    JobNotFound,
    PayloadTooLarge,
    StoreError,
    WrongState,
)

log = logging.getLogger(__name__)

RETRY_AFTER = 5  # seconds a client should wait before trying again when we are unavailable

# The API's code for each HTTP status Litestar itself may answer with.
_CODES = {
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


class ApiError(Exception):
    """An error answered as it is: status, code, message and details."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def invalid_request(message: str) -> ApiError:
    """400: a parameter or body that cannot be read at all."""
    return ApiError(HTTP_400_BAD_REQUEST, "invalid_request", message)


def validation_error(field: str, message: str, **details: Any) -> ApiError:
    """400: a field is wrong; `details.field` names it."""
    return ApiError(
        HTTP_400_BAD_REQUEST, "validation_error", f"{field}: {message}", {"field": field, **details}
    )


def payload_too_large(field: str, size: int, limit: int, **details: Any) -> ApiError:
    """413: a field is larger than the configured limit."""
    return ApiError(
        HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        "payload_too_large",
        f"{field} is {size} bytes; the limit is {limit}",
        {"field": field, "limit": limit, **details},
    )


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response[ErrorResponse]:
    """The API's error body with `status` (503s carry Retry-After)."""
    headers = {"Retry-After": str(RETRY_AFTER)} if status == HTTP_503_SERVICE_UNAVAILABLE else {}
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details))
    return Response(body, status_code=status, headers=headers)


def error_of(exc: Exception) -> ApiError:
    """The API error an exception stands for (also used for one item of a batch)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, PayloadTooLarge):
        return payload_too_large(exc.field, exc.size, exc.limit)
    if isinstance(exc, InvalidJob):
        return validation_error(exc.field, exc.message)
    if isinstance(exc, JobNotFound):
        return ApiError(HTTP_404_NOT_FOUND, "not_found", str(exc))
    if isinstance(exc, WrongState):
        return ApiError(HTTP_409_CONFLICT, "conflict", str(exc), {"state": exc.state})
    if isinstance(exc, DuplicateJob):
        return ApiError(HTTP_409_CONFLICT, "conflict", str(exc))
    if isinstance(exc, BrokerError | StoreError):
        log.warning("answering 503: %s", exc)
        what = "the job store" if isinstance(exc, StoreError) else "RabbitMQ"
        return ApiError(
            HTTP_503_SERVICE_UNAVAILABLE,
            "unavailable",
            f"{what} is unavailable; try again later",
        )
    if isinstance(exc, ValidationException):
        return _from_validation(exc)
    if isinstance(exc, HTTPException):
        code = _CODES.get(exc.status_code, "internal_error" if exc.status_code >= 500 else "error")
        return ApiError(exc.status_code, code, exc.detail)
    log.error("unexpected error", exc_info=exc)
    return ApiError(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal error")


def _from_validation(exc: ValidationException) -> ApiError:
    problems = exc.extra if isinstance(exc.extra, list) else []
    first = problems[0] if problems and isinstance(problems[0], dict) else {}
    message = str(first.get("message") or exc.detail)
    key = str(first.get("key") or "")
    # Litestar names the handler's parameter ("data") when the body as a whole is at fault;
    # the field is then in msgspec's message, if anywhere.
    field = key if key and key != "data" else field_in(message) or "body"
    return validation_error(field, message, source=first.get("source", "body"))


_REQUIRED = re.compile(r"missing required field `([^`]+)`")
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


def field_in(message: str) -> str | None:
    """The field a msgspec validation message is about ("Object missing required field
    `type`", "Expected `int`, got `str` - at `$.priority`"), or None."""
    at = _AT_PATH.search(message)
    path = at.group(1) if at else ""
    required = _REQUIRED.search(message)
    if required:
        return f"{path}.{required.group(1)}" if path else required.group(1)
    return path or None


def _handle(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorResponse]:
    error = error_of(exc)
    return error_response(error.status, error.code, error.message, error.details)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {Exception: _handle}

# Every status an API route may answer with besides its success, documented with the one
# error body they share (OpenAPI clients and schemathesis check answers against these).
ERROR_RESPONSES: dict[int, ResponseSpec] = {
    status: ResponseSpec(ErrorResponse, description=description, generate_examples=False)
    for status, description in {
        400: "invalid_request or validation_error (details.field names the field)",
        401: "unauthorized: no valid API key",
        403: "forbidden: the key's role is too low",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict: the job's state does not allow it",
        413: "payload_too_large",
        500: "internal_error",
        503: "unavailable: RabbitMQ or the store (with Retry-After)",
    }.items()
}
