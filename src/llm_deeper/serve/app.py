"""The FastAPI app: OpenAI-compatible routes, health, metrics and the web chat page.

`create_app(engine)` builds it around an already-started `Engine`; the CLI
(`llm-deeper serve`), the lesson and the tests all go through it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from ..inference.engine import Engine
from .auth import bearer_checker
from .errors import install_error_handlers
from .metrics import Metrics
from .schemas import ChatCompletionRequest, CompletionRequest
from .service import CompletionService

STATIC = Path(__file__).parent / "static"
KNOWN_ROUTES = ("/", "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions")


def create_app(engine: Engine, api_key: str | None = None, default_max_tokens: int = 1024) -> FastAPI:
    """An app serving `engine`; with `api_key`, the /v1 routes require it."""
    app = FastAPI(title="LLM Deeper server", version="0.1.0",
                  description="OpenAI-compatible chat and text completions, streaming, LoRA adapters by model name, constrained JSON and tool calls.")
    metrics = Metrics()
    service = CompletionService(engine, metrics, default_max_tokens)
    app.state.engine, app.state.metrics, app.state.service = engine, metrics, service
    install_error_handlers(app)
    needs_key = [Depends(bearer_checker(api_key))]

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        response = await call_next(request)
        path = request.url.path
        metrics.count_request(path if path in KNOWN_ROUTES else "other", response.status_code)
        return response

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health", summary="Liveness and load")
    async def health():
        return {"status": "ok", "model": engine.name, **engine.stats()}

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus():
        return PlainTextResponse(metrics.render(engine.stats()), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models", dependencies=needs_key, summary="The base model and each LoRA adapter")
    async def models():
        return JSONResponse(service.models_payload())

    @app.post("/v1/chat/completions", dependencies=needs_key, summary="Chat completion (OpenAI shape)")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        return await service.chat(body, request)

    @app.post("/v1/completions", dependencies=needs_key, summary="Text completion (OpenAI shape)")
    async def completions(body: CompletionRequest, request: Request):
        return await service.completions(body, request)

    return app
