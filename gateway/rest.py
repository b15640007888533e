"""REST v2: thin handlers over the store's api surface (views and SQL functions).

Each handler validates its query parameters, makes one parameterised call and returns the
rows as a JSON list. Meaning (ordering, aggregation, anomaly rules) lives in SQL, so a new
analytic needs no gateway change beyond a route; store errors map to statuses in errors.py.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .auth import requires_token
from .db import fetch_all
from .errors import ApiError
from .responses import json_response

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def instance_param(request: Request) -> str:
    name = request.query_params.get("instance", "")
    if not name.strip():
        raise ApiError(400, "query parameter 'instance' is required (an instance name)")
    return name


def limit_param(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, f"query parameter 'limit' must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


@requires_token
async def instances(request: Request) -> Response:
    rows = await fetch_all(request, "SELECT * FROM pganalytics.api_instances ORDER BY name")
    return json_response(rows)


@requires_token
async def queries(request: Request) -> Response:
    """Top queries of one instance by total execution time."""
    name, limit = instance_param(request), limit_param(request)
    rows = await fetch_all(request, "SELECT * FROM pganalytics.api_queries(%s, %s)", (name, limit))
    return json_response(rows)


@requires_token
async def query_analysis(request: Request) -> Response:
    """Per-query statistics, anomaly flag, reasons and recommendation for one instance."""
    name = instance_param(request)
    rows = await fetch_all(
        request, "SELECT * FROM pganalytics.analyze_query_performance(%s)", (name,))
    return json_response(rows)
