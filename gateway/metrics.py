"""GET /metrics: the gateway's own health in Prometheus text format, written by hand.

Exposed series:
    pganalytics_gateway_requests_total{method,route,status}  counter
    pganalytics_gateway_store_up                              gauge, 1 if the store answered
    pganalytics_gateway_pool_connections{state}               gauge, pool size / idle

``route`` is the route's path template (``/api/v2/queries``), never the raw URL, so label
cardinality stays bounded; unknown URLs count as ``<unmatched>``.

/metrics needs no token: scrapers rarely carry bearer tokens and the series hold no store
data (no instance names, no query text). Restrict it at the network or proxy if even
request counts are sensitive. Each scrape probes the store so the gauge is current.
"""
from __future__ import annotations

from collections import Counter

import psycopg
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .db import fetch_all

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROBE_TIMEOUT = 2.0


class Metrics:
    """In-process counters of one gateway process."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.store_up: bool = False

    def render(self, pool_stats: dict[str, int] | None = None) -> str:
        lines = ["# HELP pganalytics_gateway_requests_total HTTP requests served.",
                 "# TYPE pganalytics_gateway_requests_total counter"]
        for (method, route, status), n in sorted(self.requests.items()):
            lines.append(f"pganalytics_gateway_requests_total{{method={_label(method)},"
                         f'route={_label(route)},status="{status:d}"}} {n:d}')
        lines += ["# HELP pganalytics_gateway_store_up 1 if the store answered the last attempt.",
                  "# TYPE pganalytics_gateway_store_up gauge",
                  f"pganalytics_gateway_store_up {int(self.store_up)}"]
        if pool_stats is not None:
            lines += ["# HELP pganalytics_gateway_pool_connections Store connections in the pool.",
                      "# TYPE pganalytics_gateway_pool_connections gauge"]
            for state, key in (("open", "pool_size"), ("idle", "pool_available")):
                lines.append(f'pganalytics_gateway_pool_connections{{state="{state}"}} '
                             f"{pool_stats.get(key, 0)}")
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class MetricsMiddleware:
    """Pure ASGI middleware counting each HTTP response by method, route template, status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # if the app raises before starting a response

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = scope.get("route")  # set in place by the router
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.requests[(scope["method"], template, status)] += 1


async def metrics_endpoint(request: Request) -> Response:
    state = request.app.state
    try:
        await fetch_all(request, "SELECT 1", timeout=min(state.timeout, PROBE_TIMEOUT))
    except psycopg.Error:
        pass  # fetch_all has recorded the store as down
    return PlainTextResponse(state.metrics.render(state.pool.get_stats()), media_type=CONTENT_TYPE)
