"""GET /: the web chat page (static HTML and JS that call /v1/chat/completions)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    routes = APIRouter()

    @routes.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    app.include_router(routes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
