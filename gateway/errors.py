"""Map every failure to JSON {"error": "..."} with the right HTTP status.

The store's SQL functions signal client mistakes with SQLSTATEs, and this table is the one
place that turns them into statuses, so handlers stay free of try/except:

    P0002 no_data_found            -> 404  (e.g. unknown instance)
    P0001 raise_exception, 22xxx   -> 400  (argument validation in SQL)
    57014 query_canceled           -> 504  (statement_timeout)
    other OperationalError         -> 503  (store unreachable; pool timeout)
    any other psycopg.Error        -> 500  (logged with its SQLSTATE, message not sent)

Messages of 4xx errors are the function's primary message (no CONTEXT, which could show SQL
internals). 503/500 messages are fixed sentences: connection errors can name hosts and the
DSN, which clients must not see.
"""
from __future__ import annotations

import logging

import psycopg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .db import store_unreachable
from .responses import error_response

log = logging.getLogger("pganalytics.gateway")

STORE_UNAVAILABLE = "the store is unavailable: try again shortly, and see /health"


class ApiError(Exception):
    """A client-facing error raised by handlers; its message is safe to show."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status_code, self.message, self.headers = status_code, message, headers


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.message, exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route 404, 405), as JSON instead of plain text."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))


def _primary(exc: psycopg.Error) -> str:
    return exc.diag.message_primary or "the store rejected the request"


async def store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, psycopg.Error)
    if isinstance(exc, psycopg.errors.NoDataFound):
        return error_response(404, _primary(exc))
    if isinstance(exc, (psycopg.errors.RaiseException, psycopg.errors.DataError)):
        return error_response(400, _primary(exc))
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return error_response(504, "the store took too long to answer this request")
    if store_unreachable(exc):
        # for the operator (libpq never puts the password in its messages); not for clients
        log.warning("store unreachable: %s: %s", type(exc).__name__, str(exc).strip()[:300])
        return error_response(503, STORE_UNAVAILABLE)
    log.error("store error %s on %s: %s", exc.sqlstate, request.url.path, _primary(exc))
    return error_response(500, "the store could not answer this request (see the gateway log)")


HANDLERS = {
    ApiError: api_error,
    HTTPException: http_error,
    psycopg.Error: store_error,
}
