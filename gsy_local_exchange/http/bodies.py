"""Request bodies in and JSON answers out: size-limited reading, JSON parsing, field errors.

A body is refused (413) from its ``Content-Length`` before a byte of it is read, and a chunked
body as soon as it passes the limit, so no client can make the facade buffer more than the
limit per request. Nesting is bounded like the exchange's own input (``MAX_PAYLOAD_DEPTH``),
and a client leaving mid-body costs one rate-limited log line, not a traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from gsy_e_sdk.wire.log_limit import RateLimitedLog
from gsy_e_sdk.wire.version import __version__
from gsy_local_exchange.http import models as m

# The exchange's own bound on what it reads from Redis, so a body the facade accepts is one the
# exchange will accept too.
from gsy_local_exchange.redis_api import MAX_PAYLOAD_DEPTH, _nested_deeper_than

logger = logging.getLogger(__name__)
limited_log = RateLimitedLog(logger)

Model = TypeVar("Model", bound=BaseModel)


class ApiError(Exception):
    """An answer other than 2xx; its text is safe to return to the caller."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def json_response(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"API-VERSION": __version__})


def _too_large(limit: int) -> ApiError:
    # Connection: close, so uvicorn drops the connection instead of reading the rest of the body.
    return ApiError(413, f"Request body larger than {limit} bytes.", {"Connection": "close"}, limit_bytes=limit)


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not (length.isascii() and length.isdigit()):
            raise ApiError(400, "Invalid Content-Length header.", {"Connection": "close"})
        if int(length) > limit:
            raise _too_large(limit)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _too_large(limit)
    except ClientDisconnect:
        peer = request.client.host if request.client else "?"
        limited_log.warning("a client (%s) left in the middle of its request body to %s", peer, request.url.path)
        raise ApiError(400, "The request body was cut off.") from None
    return bytes(body)


def parse_body(raw: bytes, model: type[Model]) -> Model:
    """Validate ``raw`` as a JSON object of ``model``; 400 naming the first bad field."""
    too_deep = ApiError(400, f"Request body is nested deeper than {MAX_PAYLOAD_DEPTH} levels.")
    try:
        data = json.loads(raw) if raw.strip() else {}
    except RecursionError:
        raise too_deep from None
    except ValueError:
        raise ApiError(400, "Request body must be JSON.") from None
    if _nested_deeper_than(data, MAX_PAYLOAD_DEPTH):
        raise too_deep
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = m.field_errors(exc)
        raise ApiError(400, f"Invalid field {errors[0]['field']!r}: {errors[0]['message']}", fields=errors) from None
