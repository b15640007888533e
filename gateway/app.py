"""The gateway application: create_app() wires the pool, auth, metrics and one routing table.

Run it with ``python -m pganalytics.gateway`` or any ASGI server:
``uvicorn --factory 'pganalytics.gateway.app:app_from_env'`` (DSN in PGANALYTICS_DSN; prefer
a libpq service name or .pgpass over a password in the DSN).

Routes (auth = ``Authorization: Bearer <token>``):
    GET /                          dashboard page            no auth (holds no data)
    GET /static/...                dashboard assets          no auth
    GET /health                    store reachability        no auth
    GET /metrics                   Prometheus text           no auth (see metrics.py)
    GET /api/v2/instances          monitored instances       auth
    GET /api/v2/queries            top queries in a window   auth   ?instance=&limit=
                                   &from=&to= (ISO 8601 with zone) or &window=15m|1h|7d
                                   (default the last hour, at most 31 days)
    GET /api/v2/queries/analysis   anomalies, advice         auth   ?instance=

Every /api/v2 route calls one api_* view or function of the store (the gateway role may
reach nothing else; see tests/db/test_api_surface.py).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from . import dashboard, rest
from .auth import TokenAuth
from .db import make_pool
from .errors import HANDLERS
from .health import health
from .metrics import Metrics, MetricsMiddleware, metrics_endpoint

ROUTES = [
    Route("/", dashboard.index, methods=["GET"]),
    Mount("/static", app=dashboard.static_files, name="static"),
    Route("/health", health, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
    Route("/api/v2/instances", rest.instances, methods=["GET"]),
    Route("/api/v2/queries", rest.queries, methods=["GET"]),
    Route("/api/v2/queries/analysis", rest.query_analysis, methods=["GET"]),
]


def create_app(dsn: str, *, pool_min: int = 1, pool_max: int = 4, timeout: float = 5.0,
               auth_ttl: float = 30.0) -> Starlette:
    """A gateway serving the store at ``dsn``.

    ``timeout`` bounds the wait for a store connection (then 503); ``auth_ttl`` is how long
    a valid token is trusted without asking the store again (0 disables the cache).
    """
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = make_pool(dsn, pool_min, pool_max, timeout)
        await pool.open(wait=False)  # start even if the store is down; /health says so
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = Starlette(routes=ROUTES, lifespan=lifespan, exception_handlers=HANDLERS,
                    middleware=[Middleware(MetricsMiddleware, metrics=metrics)])
    app.state.metrics = metrics
    app.state.auth = TokenAuth(ttl=auth_ttl)
    app.state.timeout = timeout
    return app


def app_from_env() -> Starlette:
    """Factory for ASGI servers: the DSN comes from PGANALYTICS_DSN ('' = libpq defaults)."""
    return create_app(os.environ.get("PGANALYTICS_DSN", ""))
