"""GET /health: is the gateway able to serve, and which store is behind it (no auth).

Load balancers and orchestrators poll this, so it answers 200 only when a pooled
connection actually reaches the store, and 503 with one plain sentence otherwise (never the
DSN or the driver's message, which can name hosts and users). The schema revision comes
from pganalytics.api_schema_revision() (api roles cannot read Alembic's table).
"""
from __future__ import annotations

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from .db import mark_store, store_unreachable
from .errors import log
from .responses import json_response

_REVISION = "SELECT pganalytics.api_schema_revision()"


async def store_info(request: Request) -> dict:
    """Facts about the store, from one pooled connection; psycopg errors propagate."""
    state = request.app.state
    async with state.pool.connection(timeout=state.timeout) as conn:
        revision = (await (await conn.execute(_REVISION)).fetchone())[0]
        return {"reachable": True, "schema_revision": revision,
                "server_version": conn.info.server_version}


UNREACHABLE = ("the store is unreachable: check that it is running and that the gateway's "
               "connection settings are right")
FAILING = "the store answered the health check with an error (see the gateway log)"


async def health(request: Request) -> Response:
    try:
        info = await store_info(request)
    except psycopg.Error as exc:
        down = store_unreachable(exc)
        mark_store(request, not down)
        log.warning("health check failed: %s (SQLSTATE %s)", type(exc).__name__, exc.sqlstate)
        return json_response({"status": "unavailable", "error": UNREACHABLE if down else FAILING},
                             503, {"Retry-After": "5"})
    mark_store(request, True)
    return json_response({"status": "ok", "store": info})
