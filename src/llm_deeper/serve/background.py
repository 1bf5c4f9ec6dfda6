"""Run the server in a background thread on a free port (lessons, tests, speedrun)."""

from __future__ import annotations

import threading
import time

from ..ports import free_port


def wait_until_healthy(url: str, process, timeout: float = 60.0) -> None:
    """Poll `url`/health until the server subprocess answers 200; RuntimeError (with its output) if it dies or times out."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"the server exited with code {process.returncode} before it was healthy\n{output}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server at {url} was not healthy after {timeout:.0f} s")
        time.sleep(0.2)


class BackgroundServer:
    """uvicorn serving an app in a daemon thread; `url` once started, `stop()` to end."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None):
        import uvicorn

        from .shutdown import GracefulServer, ShutdownGate

        self.host, self.port = host, port or free_port(host)
        self.gate = getattr(app.state, "gate", None) or ShutdownGate()
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", access_log=False, lifespan="off")
        self.server = GracefulServer(config, self.gate)
        self.thread = threading.Thread(target=self.server.run, name="llm-deeper-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """As on SIGTERM: requests in flight get the app's shutdown timeout, then are cancelled."""
        self.gate.begin()
        self.server.should_exit = True
        self.thread.join(timeout=self.gate.timeout_s + 10)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
