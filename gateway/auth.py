"""Bearer-token authentication for /api routes, checked by the store itself.

The gateway holds no token list: ``pganalytics.api_authenticate(sha256(token))`` (SECURITY DEFINER)
answers with the token's name or NULL, so the gateway's role needs no table privileges and
revoking a token is one UPDATE in the store. Valid answers are cached for ``ttl`` seconds,
keyed by the token's SHA-256 (never the token), so a busy client costs one store round trip
per ttl; a revocation therefore takes effect within ttl. Failures are not cached: a token
created a moment ago works at once. Tokens never appear in logs or error messages.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from .db import fetch_all
from .errors import ApiError
from .tokens import token_digest

MAX_TOKEN_LENGTH = 512
CHALLENGE = 'Bearer realm="pganalytics"'

Endpoint = Callable[[Request], Awaitable[Response]]


def _unauthorized(message: str, invalid: bool) -> ApiError:
    challenge = CHALLENGE + (', error="invalid_token"' if invalid else "")
    return ApiError(401, message, {"WWW-Authenticate": challenge})


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ApiError(401)."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'", False)
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
        raise _unauthorized("invalid or revoked token", True)
    return token


class TokenAuth:
    """Validates tokens through the store, with a small positive cache."""

    def __init__(self, ttl: float = 30.0, max_entries: int = 1024,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_entries, self.clock = ttl, max_entries, clock
        self._cache: dict[bytes, tuple[str, float]] = {}

    async def authenticate(self, request: Request) -> str:
        """The name of the request's token, or ApiError(401)."""
        token = bearer_token(request.headers.get("authorization"))
        key = token_digest(token)
        hit = self._cache.get(key)
        if hit is not None and hit[1] > self.clock():
            return hit[0]
        rows = await fetch_all(request, "SELECT pganalytics.api_authenticate(%s) AS name", (key,))
        name = rows[0]["name"] if rows else None
        if name is None:
            self._cache.pop(key, None)
            raise _unauthorized("invalid or revoked token", True)
        self._remember(key, name)
        return name

    def _remember(self, key: bytes, name: str) -> None:
        if self.ttl <= 0:
            return
        now = self.clock()
        if len(self._cache) >= self.max_entries:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            while len(self._cache) >= self.max_entries:  # still full: drop the oldest
                del self._cache[next(iter(self._cache))]
        self._cache[key] = (name, now + self.ttl)


def requires_token(endpoint: Endpoint) -> Endpoint:
    """Wrap an endpoint so it runs only for a valid token; sets request.state.token_name."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        request.state.token_name = await request.app.state.auth.authenticate(request)
        return await endpoint(request)

    return guarded
