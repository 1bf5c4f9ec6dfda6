"""The Host-header check: a server on localhost is not reachable through DNS rebinding.

A web page on evil.example can make its own name resolve to 127.0.0.1 after
the page has loaded; the browser then sends the page's requests to our
keyless server on localhost, as the same origin, and lets the page read the
replies. Those requests still carry `Host: evil.example`, so a server that
answers only the names it knows is safe from it. An IP address in the Host
header is always accepted: rebinding needs a name, and clients that reach a
server by address (LAN, containers, load balancers) keep working.
"""

from __future__ import annotations

import ipaddress
import json

from .errors import error_body

LOOPBACK_NAMES = ("localhost",)  # the default: the loopback name (addresses pass anyway)
ANY_HOST = "*"  # allows every Host header (behind a proxy that checks it)


def host_name(header: str) -> str:
    """`Host` header value → the bare host, lower case: "[::1]:8000" → "::1", "LocalHost.:80" → "localhost"."""
    header = header.strip().lower()
    if header.startswith("["):  # an IPv6 literal, maybe with a port
        return header[1:header.find("]")] if "]" in header else header
    name, _, _ = header.partition(":")
    return name.rstrip(".")


def is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class HostCheck:
    """ASGI middleware: 400 for a Host header that is neither an IP address nor one of `allowed`."""

    def __init__(self, app, allowed: tuple[str, ...] = LOOPBACK_NAMES):
        self.app = app
        self.allowed = {host_name(name) for name in allowed}

    def accepts(self, header: str | None) -> bool:
        if header is None or ANY_HOST in self.allowed:
            return True  # no Host header: HTTP/1.0 or a raw client, never a browser
        name = host_name(header)
        return is_address(name) or name in self.allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((value.decode("latin-1") for key, value in scope.get("headers", ()) if key == b"host"), None)
        if self.accepts(header):
            await self.app(scope, receive, send)
            return
        name = host_name(header)[:100]
        message = (f"this server does not answer to the host name {name!r} (a guard against DNS rebinding); "
                   f"use its address or localhost, or start it with --allowed-host {name}")
        body = json.dumps(error_body(400, message, None, "invalid_host")).encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
