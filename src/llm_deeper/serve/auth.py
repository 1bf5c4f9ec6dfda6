"""Optional API key: with `--api-key`, every /v1 route needs `Authorization: Bearer KEY`."""

from __future__ import annotations

import secrets

from fastapi import Request

from .errors import APIError


def bearer_checker(api_key: str | None):
    """A FastAPI dependency that raises 401 unless the request carries the key."""

    async def check(request: Request) -> None:
        if api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), api_key.encode()):
            raise APIError(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")

    return check
