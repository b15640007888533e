"""GET / : a one-page dashboard that is only a client of the REST API (no build step).

The page holds no data and needs no token to load; it asks for the token in the browser and
keeps it in sessionStorage (gone when the tab closes), then calls /api/v2 like any client.
A strict Content-Security-Policy allows only this origin's own script, so data shown in the
page (query text is user-controlled SQL) can never run as code.
"""
from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)


static_files = StaticFiles(directory=STATIC_DIR)
