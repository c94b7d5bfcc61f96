"""The ASGI app: the routers, error envelope and OpenAPI document of one node (built by ``voipbin.node``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from voipbin import __version__
from voipbin.api.errors import install_error_handlers
from voipbin.api.routes import (
    accesskeys,
    activeflows,
    aicalls,
    aimessages,
    ais,
    aisummaries,
    auth,
    billing,
    calls,
    customer,
    extensions,
    flows,
    metrics,
    numbers,
    recordings,
    transcribes,
    trunks,
    ws,
)
from voipbin.config import Settings, get_settings
from voipbin.node import Node, build_node, start_node, stop_node

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, node: Node | None = None, *, owns_process: bool = False
) -> FastAPI:
    """The ASGI app of one node; ``node`` (built from ``settings``) is handed to the routers through
    FastAPI dependencies (``api.deps``). ``owns_process``: the app is the whole process (``voipbin
    serve``), so start-up may tune process-wide state (the garbage collector)."""
    node = node or build_node(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await start_node(node, freeze_gc=owns_process)
        try:
            yield
        finally:
            await stop_node(node)

    app = FastAPI(
        title="voipbin",
        version=__version__,
        description="Self-hostable AI voice agent platform, compatible with VoIPBIN's v1.0 API.",
        lifespan=lifespan,
        openapi_url="/v1.0/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.node = node
    install_error_handlers(app)
    for module in (
        auth,
        customer,
        accesskeys,
        flows,
        ais,
        numbers,
        extensions,
        billing,
        trunks,
        calls,
        recordings,
        activeflows,
        transcribes,
        aisummaries,
        aicalls,
        aimessages,
        ws,
        metrics,
    ):
        app.include_router(module.router)

    @app.get("/health", tags=["health"], summary="Liveness and database check")
    async def health() -> dict[str, Any]:
        from sqlalchemy import text

        async with node.db.session() as session:
            await session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "token": {"type": "apiKey", "in": "query", "name": "token"},
                "accesskey": {"type": "apiKey", "in": "query", "name": "accesskey"},
                "bearer": {"type": "http", "scheme": "bearer"},
            }
            schema["security"] = [{"token": []}, {"accesskey": []}, {"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
