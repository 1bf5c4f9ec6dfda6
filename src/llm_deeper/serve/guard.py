"""The server's outer layer: body-size limit, a count for every status, no reset connections.

A plain ASGI middleware, so it sees every response, 5xx included (FastAPI's
own middleware runs inside the last-resort error handler and never saw the
500s), and it can refuse a body before the framework reads it into memory:
a 20 MB chat request once froze the server for 25 s and kept 2.6 GB.
"""

from __future__ import annotations

import json
import logging

from starlette.exceptions import HTTPException

from .errors import error_body
from .metrics import Metrics
from .shutdown import ShutdownGate

log = logging.getLogger("llm_deeper.serve")

BYTES_PER_CONTEXT_TOKEN = 64  # JSON-escaped text runs ~4-12 bytes a token; 64 leaves room for tools and formatting
BASE_BODY_BYTES = 1 << 20  # plus 1 MiB for everything that is not prompt


def default_body_limit(context_length: int) -> int:
    """The largest body a request whose prompt fits the context can need (1.5 MiB for an 8,192-token model)."""
    return BASE_BODY_BYTES + BYTES_PER_CONTEXT_TOKEN * context_length


class BodyTooLarge(HTTPException):
    """Raised while reading a body that turns out longer than the limit (chunked uploads have no length up front)."""

    def __init__(self, limit: int):
        super().__init__(413, too_large_message(limit))


def too_large_message(limit: int) -> str:
    return (f"the request body is larger than this server's limit of {limit:,} bytes; shorten the prompt "
            f"(or start the server with a larger --max-request-bytes)")


class RequestGuard:
    """ASGI middleware around the whole app."""

    def __init__(self, app, metrics: Metrics, max_body_bytes: int, gate: ShutdownGate, routes: tuple[str, ...]):
        self.app, self.metrics, self.max_body_bytes, self.gate, self.routes = app, metrics, max_body_bytes, gate, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        status: int | None = None

        async def send_counted(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await _reply(send_counted, 413, too_large_message(self.max_body_bytes), code="request_too_large")
            elif self.gate.draining and path.startswith("/v1/"):
                await _reply(send_counted, 503, "the server is shutting down; send the request to another instance", code="server_shutdown")
            else:
                await self.app(scope, self._limited(receive), send_counted)
        except Exception as exc:  # a bug: answer in the OpenAI shape instead of resetting the connection
            log.exception("unhandled error on %s", path)
            if status is None:
                # The detail (an exception's text can hold paths, values, internals) goes to the log only.
                await _reply(send_counted, 500, "internal error: the server failed on this request (the detail is in its log)", code="internal_error")
            else:  # the response started (a stream): end it cleanly if it is still open
                try:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except Exception:
                    pass
        finally:
            self.metrics.count_request(path if path in self.routes else "other", status or 500)

    def _limited(self, receive):
        """`receive` that fails with 413 once the body passes the limit (bodies sent without a Content-Length)."""
        received = 0

        async def receive_limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        return receive_limited


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reply(send, status: int, message: str, code: str) -> None:
    body = json.dumps(error_body(status, message, None, code)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
