"""Graceful shutdown with a deadline.

On SIGTERM (or Ctrl+C) the server stops accepting connections, answers 503 to
new requests on open ones, and lets the requests in flight run on for
`--shutdown-timeout` seconds. Whatever is still generating then is cancelled:
a stream gets an error event and `[DONE]`, a plain request a 503. Without the
deadline a server with a full queue took minutes to exit (23 s and 92 s were
measured with the defaults).
"""

from __future__ import annotations

import threading

import uvicorn

BACKSTOP_S = 2.0  # after the deadline, time for cancelled streams to write their last event before uvicorn cuts them


class ShutdownGate:
    """The server's shutdown state, read by every request (set from the signal handler)."""

    def __init__(self, timeout_s: float = 5.0):
        if timeout_s < 0:
            raise ValueError(f"the shutdown timeout must be 0 or more seconds, got {timeout_s}")
        self.timeout_s = timeout_s
        self.draining = False  # no new work is accepted
        self.expired = False  # the deadline passed: requests still running are cancelled
        self._timer: threading.Timer | None = None

    def begin(self) -> None:
        """Start draining (idempotent); the deadline fires `timeout_s` later."""
        if self.draining:
            return
        self.draining = True
        self._timer = threading.Timer(self.timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True


class GracefulServer(uvicorn.Server):
    """uvicorn that opens the gate's deadline when it is told to exit."""

    def __init__(self, config: uvicorn.Config, gate: ShutdownGate):
        config.timeout_graceful_shutdown = gate.timeout_s + BACKSTOP_S
        super().__init__(config)
        self.gate = gate

    def handle_exit(self, sig, frame) -> None:
        self.gate.begin()
        super().handle_exit(sig, frame)
