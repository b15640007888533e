"""JSON out of store rows: one place decides how PostgreSQL values look to clients.

Timestamps become ISO-8601 strings, numeric becomes a JSON number, NaN/Infinity (legal in
float8, illegal in JSON) become null. API responses are marked ``no-store`` because they are
served to a bearer of a token and must not linger in shared caches.
"""
from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from starlette.responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store"}


def jsonable(value: Any) -> Any:
    """A value json.dumps accepts, with the conventions above."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


def json_response(content: Any, status_code: int = 200,
                  headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(jsonable(content), status_code=status_code,
                        headers={**NO_STORE, **(headers or {})})


def error_response(status_code: int, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """Every error the gateway sends has this one shape: {"error": "<sentence>"}."""
    return json_response({"error": message}, status_code, headers)
