"""Optional API key: with `--api-key`, every /v1 route needs `Authorization: Bearer KEY`."""

from __future__ import annotations

import secrets

from fastapi import Request

from ..errors import UserError
from .errors import APIError


def checked_api_key(api_key: str | None, flag: str = "--api-key") -> str | None:
    """The key to require, or None for no key; an empty one is refused.

    `--api-key "$KEY"` with KEY unset would otherwise make every request that
    sends `Authorization: Bearer ` (an empty token) pass: a server the user
    believes locked would be open.
    """
    if api_key is None:
        return None
    if not api_key.strip():
        raise UserError(f"{flag} is empty (an unset variable?): give a real key, or leave {flag} and LLM_DEEPER_API_KEY unset to serve without one")
    return api_key


def bearer_checker(api_key: str | None):
    """A FastAPI dependency that raises 401 unless the request carries the key."""
    api_key = checked_api_key(api_key)

    async def check(request: Request) -> None:
        if api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), api_key.encode()):
            raise APIError(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")

    return check
