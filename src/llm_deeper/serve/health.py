"""GET /health (liveness and load, open without an API key) and GET /metrics (Prometheus text)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from ..inference.engine import Engine
from .metrics import Metrics
from .shutdown import ShutdownGate


def router(engine: Engine, metrics: Metrics, gate: ShutdownGate) -> APIRouter:
    routes = APIRouter()

    @routes.get("/health", summary="Liveness and load")
    async def health():
        return {"status": "draining" if gate.draining else "ok", "model": engine.name, **engine.stats()}

    @routes.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus():
        return PlainTextResponse(metrics.render(engine.stats()), media_type="text/plain; version=0.0.4; charset=utf-8")

    return routes
