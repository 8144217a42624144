"""One error shape for every failure, and the mapping from the pools' errors to HTTP statuses.

Body: ``{"status": "error", "message": "...", "field": "...", "errors": [...]}``, where
``field`` names the offending input (``limit``, ``events[3].user_id``). A client can
never cause a 500: validation is 422, unknown ids 404, refused actions 409, an
unavailable database or Redis 503 with a hint; anything else is a bug, logged.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("quantpipe.api")

LOC_PREFIXES = ("query", "path", "body", "header", "cookie")


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ErrorResponse(BaseModel):
    status: str = "error"
    message: str
    field: str | None = None
    errors: list[FieldError] = []


class ApiError(Exception):
    """Raised by handlers: status, message and the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers


def not_found(message: str, field: str | None = None) -> ApiError:
    return ApiError(404, message, field)


def field_of(message: str) -> str | None:
    """The pools' errors start with the field: ``"trade_id: required"`` → ``trade_id``."""
    head, sep, _ = message.partition(":")
    return head.strip() if sep and head and " " not in head.strip() and len(head) <= 100 else None


def loc_to_field(loc: tuple[Any, ...]) -> str:
    parts = list(loc[1:] if loc and loc[0] in LOC_PREFIXES else loc)
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif str(p).startswith(("function-", "tagged-union")):  # pydantic internals, not a field
            continue
        else:
            out += ("." if out else "") + str(p)
    return out or (str(loc[0]) if loc else "request")


def _body(status: int, message: str, field: str | None = None, errors: list[dict] | None = None,
          headers: dict | None = None) -> JSONResponse:
    payload = ErrorResponse(message=message, field=field, errors=errors or []).model_dump()
    return JSONResponse(payload, status_code=status, headers=headers)


def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"field": loc_to_field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid")),
               "type": str(e.get("type", "value_error"))} for e in exc.errors()]
    first = errors[0] if errors else {"field": "request", "message": "invalid request"}
    return _body(422, f"{first['field']}: {first['message']}", first["field"], errors)


def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else "error"
    if exc.status_code == 400 and "body" in message:  # undecodable body: bad input like any other, a 422
        return _body(422, f"body: {message}", "body", [{"field": "body", "message": message, "type": "body"}])
    return _body(exc.status_code, message, headers=getattr(exc, "headers", None))


def _api(_: Request, exc: ApiError) -> JSONResponse:
    return _body(exc.status, exc.message, exc.field, headers=exc.headers)


def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("backing service unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return _body(503, "a backing service (PostgreSQL or Redis) is unavailable; retry shortly",
                 headers={"Retry-After": "5"})


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _body(500, "internal error (logged); this is a bug in quantpipe, please report it")


def install(app: FastAPI) -> None:
    import asyncpg
    import redis
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ApiError, _api)
    for exc in (OperationalError, DisconnectionError, InterfaceError, PoolTimeout, redis.ConnectionError,
                redis.TimeoutError, ConnectionError, asyncpg.PostgresConnectionError):  # asyncpg's connect errors
        app.add_exception_handler(exc, _unavailable)
    app.add_exception_handler(Exception, _unexpected)


# Documented on every route that can answer them (schemathesis checks bodies against these)
def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {400: "Bad request", 401: "Missing, unknown or revoked API key", 403: "The key lacks the scope",
            404: "Unknown id", 409: "Refused in the current state", 422: "Invalid input (the field is named)",
            429: "Event limit reached", 503: "PostgreSQL or Redis unavailable"}
    return {c: {"model": ErrorResponse, "description": text[c]} for c in codes}
