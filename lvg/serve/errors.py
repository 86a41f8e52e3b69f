"""One JSON shape for every error: ``{"error": {"type", "message"[, "param"][, "code"]}, "detail": message}``.

``error`` follows the OpenAI API; ``detail`` keeps FastAPI's field for clients that read it.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from lvg.files import shorten

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    499: "client_closed_request",
    500: "server_error",
    503: "unavailable",
    504: "timeout",
}


class ErrorBody(BaseModel):
    type: str
    message: str
    param: str | None = None
    code: str | None = None  # a machine-readable reason where OpenAI gives one (e.g. "model_not_found")


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody
    detail: Any = None


def error_response(status: int, message: str, type_: str | None = None, headers: dict[str, str] | None = None,
                   param: str | None = None, detail: Any = None, code: str | None = None) -> JSONResponse:  # fmt: skip
    """A JSON error response in the common shape; the message is one line of at most 2,000 characters."""
    message = shorten(message)
    err: dict[str, Any] = {"type": type_ or ERROR_TYPES.get(status, "error"), "message": message}
    if param is not None:
        err["param"] = param
    if code is not None:
        err["code"] = code
    return JSONResponse({"error": err, "detail": message if detail is None else detail}, status, headers=headers)
