"""The FastAPI app: OpenAI-compatible routes, health, metrics and the web chat page.

`create_app(engine)` builds it around an already-started `Engine`; the CLI
(`llm-deeper serve`), the lesson and the tests all go through it. Each route
lives in its own module (chat, completions, models, health, web) on top of
the shared pieces: `schemas` (request validation), `serving` (engine
requests), `responses` (metadata, usage, SSE), `guard` (body limit, metrics,
last-resort errors) and `shutdown` (the deadline).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi import Depends, FastAPI

from ..inference.engine import Engine
from . import chat, completions, health, models, openapi, web
from .auth import bearer_checker
from .errors import install_error_handlers
from .guard import RequestGuard, default_body_limit
from .hosts import LOOPBACK_NAMES, HostCheck
from .metrics import Metrics
from .shutdown import ShutdownGate

KNOWN_ROUTES = ("/", "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions")
PREP_THREADS = 2  # request preparation (tokenizing, templates, grammars) off the event loop; the engine has the cores


def create_app(engine: Engine, api_key: str | None = None, default_max_tokens: int = 1024, max_request_bytes: int | None = None,
               shutdown_timeout: float = 5.0, allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES) -> FastAPI:
    """An app serving `engine`; with `api_key`, the /v1 routes require it.

    `max_request_bytes`: larger bodies get 413 (default: sized for the model's
    context, see guard.py). `shutdown_timeout`: seconds requests in flight may
    run on after the server is told to stop. `allowed_hosts`: host names the
    server answers to besides IP addresses ("*": any; see hosts.py).
    """
    app = FastAPI(title="LLM Deeper server", version="0.1.0",
                  description="OpenAI-compatible chat and text completions, streaming, LoRA adapters by model name, constrained JSON and tool calls.")
    metrics = Metrics()
    gate = ShutdownGate(shutdown_timeout)
    workers = ThreadPoolExecutor(PREP_THREADS, thread_name_prefix="llm-deeper-prep")
    engine.observers.append(metrics.observe)
    app.state.engine, app.state.metrics, app.state.gate = engine, metrics, gate
    install_error_handlers(app)
    openapi.install(app, engine.vocab_size, engine.context_length)
    app.add_middleware(HostCheck, allowed=allowed_hosts)  # inside the guard, so its 400s are counted too
    app.add_middleware(RequestGuard, metrics=metrics, max_body_bytes=max_request_bytes or default_body_limit(engine.context_length),
                       gate=gate, routes=KNOWN_ROUTES)
    needs_key = [Depends(bearer_checker(api_key))]
    web.mount(app)
    app.include_router(health.router(engine, metrics, gate))
    app.include_router(models.router(engine, needs_key))
    app.include_router(chat.router(chat.ChatServing(engine, default_max_tokens, gate, workers), needs_key))
    app.include_router(completions.router(completions.CompletionServing(engine, default_max_tokens, gate, workers), needs_key))
    return app
