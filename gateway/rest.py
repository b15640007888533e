"""REST v2: thin handlers over the store's api surface (views and SQL functions).

Each handler validates its query parameters, makes one parameterised call and returns the
rows as a JSON list. Meaning (ordering, aggregation, anomaly rules) lives in SQL, so a new
analytic needs no gateway change beyond a route; store errors map to statuses in errors.py.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from starlette.requests import Request
from starlette.responses import Response

from .auth import requires_token
from .db import fetch_all
from .errors import ApiError
from .responses import json_response

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
DEFAULT_WINDOW = timedelta(hours=1)
MAX_WINDOW = timedelta(days=31)  # the same bound as api_queries() in SQL
_WINDOW = re.compile(r"^([1-9][0-9]{0,3})([mhd])$")
_WINDOW_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# '+02:00' arrives as ' 02:00' when the client did not percent-encode the '+'
_UNENCODED_PLUS = re.compile(r" (\d{2}(?::?\d{2})?)$")


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


def time_param(request: Request, name: str) -> datetime | None:
    """An ISO 8601 timestamp with a time zone (``2026-05-01T12:00:00Z``, ``...+02:00``)."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    text = _UNENCODED_PLUS.sub(r"+\1", raw.strip())
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"query parameter '{name}' must be an ISO 8601 timestamp with a time "
                            f"zone, e.g. 2026-05-01T12:00:00Z") from None
    if value.tzinfo is None:
        raise ApiError(400, f"query parameter '{name}' needs a time zone (append Z for UTC, "
                            f"or an offset such as +02:00)")
    return value


def window_param(request: Request) -> timedelta | None:
    raw = request.query_params.get("window")
    if raw is None:
        return None
    m = _WINDOW.match(raw.strip())
    if not m:
        raise ApiError(400, "query parameter 'window' must be a number and a unit m, h or d "
                            "(e.g. 15m, 1h, 7d)")
    return timedelta(**{_WINDOW_UNITS[m.group(2)]: int(m.group(1))})


def time_window(request: Request) -> tuple[datetime, datetime]:
    """The (from, to] window of ?from=&to= or ?window= (with at most one of from/to).

    Defaults: to = now, from = to - window (1 hour). At most MAX_WINDOW long.
    """
    start, end, length = time_param(request, "from"), time_param(request, "to"), window_param(request)
    if length is not None and start is not None and end is not None:
        raise ApiError(400, "give at most two of 'from', 'to' and 'window'")
    try:
        if start is not None and end is None and length is not None:
            end = start + length
        end = end or datetime.now(timezone.utc)
        start = start or end - (length or DEFAULT_WINDOW)
    except OverflowError:
        raise ApiError(400, "the time window falls outside the years 1 to 9999") from None
    if start >= end:
        raise ApiError(400, "query parameter 'from' must be earlier than 'to'")
    if end - start > MAX_WINDOW:
        raise ApiError(400, f"the time window may be at most {MAX_WINDOW.days} days long")
    return start, end


@requires_token
async def instances(request: Request) -> Response:
    rows = await fetch_all(request, "SELECT * FROM pganalytics.api_instances ORDER BY name")
    return json_response(rows)


@requires_token
async def queries(request: Request) -> Response:
    """Top queries of one instance by execution time in a window (default the last hour)."""
    name, limit = instance_param(request), limit_param(request)
    start, end = time_window(request)
    rows = await fetch_all(request, "SELECT * FROM pganalytics.api_queries(%s, %s, %s, %s)",
                           (name, limit, start, end))
    return json_response(rows)


@requires_token
async def query_analysis(request: Request) -> Response:
    """Per-query statistics, anomaly flag, reasons and recommendation for one instance."""
    name = instance_param(request)
    rows = await fetch_all(
        request, "SELECT * FROM pganalytics.api_query_analysis(%s)", (name,))
    return json_response(rows)
