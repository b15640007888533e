"""API tokens: how they are made and the only form in which the store keeps them.

A token is 256 random bits, URL-safe so it can be pasted into a shell or a browser prompt.
The store holds only its SHA-256 (``pganalytics.api_add_token(name, digest)``), so a leaked
database dump or backup grants no API access. ``pganalytics token create NAME`` uses these
two helpers, prints the token once and never stores it.
"""
from __future__ import annotations

import hashlib
import secrets

__all__ = ["new_token", "token_digest"]

TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh random token (43 URL-safe characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    """The 32-byte SHA-256 of the token's UTF-8 bytes, as pganalytics.api_authenticate computes it."""
    return hashlib.sha256(token.encode("utf-8")).digest()
