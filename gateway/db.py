"""The gateway's only door to the store: one async connection pool and one query helper.

The pool is created and opened inside the app lifespan (it belongs to the server's event
loop) without waiting for connections, so the gateway starts, and /health can say why,
even while the store is down. Connections are autocommit (every call is one read of the api
surface, no transaction to leave open) and carry a statement_timeout so that one slow
analysis cannot hold a pool slot forever. Whether the last attempt reached the store is
recorded for the /metrics gauge.
"""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request

APPLICATION_NAME = "pganalytics-gateway"
STATEMENT_TIMEOUT_MS = 30_000


async def _configure(conn: psycopg.AsyncConnection) -> None:
    await conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")


def make_pool(dsn: str, min_size: int, max_size: int, timeout: float) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        dsn, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
        name="pganalytics-gateway", configure=_configure,
        kwargs={"autocommit": True, "application_name": APPLICATION_NAME,
                "connect_timeout": max(2, int(timeout))})


def mark_store(request: Request, up: bool) -> None:
    request.app.state.metrics.store_up = up


async def fetch_all(request: Request, sql: str, params: tuple = (), *,
                    timeout: float | None = None) -> list[dict[str, Any]]:
    """Run one parameterised statement and return its rows as dicts.

    psycopg errors propagate (errors.py maps them to HTTP); connection failures also flip
    the store-up gauge. ``timeout`` bounds the wait for a pooled connection.
    """
    state = request.app.state
    try:
        async with state.pool.connection(timeout=timeout or state.timeout) as conn:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(sql, params)
                rows = await cur.fetchall()
    except psycopg.Error as exc:
        mark_store(request, not store_unreachable(exc))
        raise
    mark_store(request, True)
    return rows


def store_unreachable(exc: BaseException) -> bool:
    """True for errors that mean "no working connection" (refused, shut down, pool timeout)."""
    return (isinstance(exc, psycopg.OperationalError)
            and not isinstance(exc, psycopg.errors.QueryCanceled))
