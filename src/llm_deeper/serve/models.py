"""GET /v1/models: the base model and each LoRA adapter, each usable as `model` in a request."""

from __future__ import annotations

import time

from fastapi import APIRouter

from ..inference.engine import Engine


def models_payload(engine: Engine, created: int) -> dict:
    def entry(name: str, parent: str | None) -> dict:
        # `root` is the name too, never the adapter's folder: file paths tell any caller how the machine is laid out.
        return {"id": name, "object": "model", "created": created, "owned_by": "llm-deeper", "root": name, "parent": parent,
                "max_model_len": engine.context_length}

    adapters = [entry(name, engine.name) for name in engine.adapters]
    return {"object": "list", "data": [entry(engine.name, None), *adapters]}


def router(engine: Engine, dependencies: list) -> APIRouter:
    routes = APIRouter(dependencies=dependencies)
    created = int(time.time())  # the server's start: the models are loaded then

    @routes.get("/v1/models", summary="The base model and each LoRA adapter")
    async def models():
        return models_payload(engine, created)

    return routes
