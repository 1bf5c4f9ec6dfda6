"""The one way to pick a free TCP port: for servers started by the library (vLLM, mlx-lm, a background server), tests and benchmarks."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it; another process could take it before we bind, rarely)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
