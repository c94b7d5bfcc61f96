"""Composition root: builds the platform (settings, database, secrets, services) and the ASGI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from voipbin import __version__, logsafe
from voipbin.api.errors import install_error_handlers
from voipbin.api.routes import (
    accesskeys,
    activeflows,
    ais,
    aisummaries,
    auth,
    billing,
    calls,
    customer,
    extensions,
    flows,
    numbers,
    recordings,
    transcribes,
    trunks,
)
from voipbin.calls.manager import UnavailableCallManager
from voipbin.config import Settings, get_settings, load_or_create_secrets
from voipbin.events.webhooks import WebhookDispatcher, stop_dispatcher
from voipbin.platform import Platform
from voipbin.security import Encryptor
from voipbin.store.db import Database
from voipbin.tenants import NewCustomer, bootstrap

log = logging.getLogger(__name__)


def build_platform(settings: Settings) -> Platform:
    secrets = load_or_create_secrets(settings.data_dir)
    return Platform(
        settings=settings,
        secrets=secrets,
        db=Database(settings.effective_database_url),
        encryptor=Encryptor(secrets.encryption_key),
    )


def print_bootstrap(created: NewCustomer) -> None:
    """Shown once, on the first start: the only time these credentials are displayed."""
    print(
        "\n=== voipbin first start: admin account created ===\n"
        f"  username:   {created.agent.username}\n"
        f"  password:   {created.password}\n"
        f"  accesskey:  {created.accesskey}\n"
        f"  customer:   {created.customer.id}\n"
        "Store these now; they are not shown again.\n",
        flush=True,
    )


async def start_platform(platform: Platform) -> None:
    logsafe.install()  # here, after the server has configured its loggers
    await platform.db.migrate()
    created = await bootstrap(platform)
    if created is not None:
        print_bootstrap(created)
    if platform.webhooks is None:
        platform.webhooks = WebhookDispatcher(platform)
        platform.webhooks.start()
    if platform.calls is None and platform.settings.telephony:
        from voipbin.calls.telephony import SipCallManager

        manager = SipCallManager(platform)
        try:
            await manager.start()
            platform.calls = manager
        except OSError as exc:
            why = f"SIP could not listen on port {platform.settings.sip_port}: {exc}"
            log.error("%s; calls will fail until this is fixed (VOIPBIN_SIP_PORT)", why)
            platform.calls = UnavailableCallManager(platform, why)
    if platform.calls is None:
        platform.calls = UnavailableCallManager(platform, "telephony is disabled (VOIPBIN_TELEPHONY=false)")


async def stop_platform(platform: Platform) -> None:
    if platform.summaries is not None:
        await platform.summaries.close()
    if platform.transcribes is not None:
        await platform.transcribes.close()
    if platform.calls is not None:
        await platform.calls.close()
    await stop_dispatcher(platform.webhooks)
    if platform.flows is not None:
        await platform.flows.close()
    from voipbin.speech.httpclients import close_shared_clients

    await close_shared_clients()
    await platform.db.close()


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> FastAPI:
    settings = settings or get_settings()
    platform = platform or build_platform(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await start_platform(platform)
        try:
            yield
        finally:
            await stop_platform(platform)

    app = FastAPI(
        title="voipbin",
        version=__version__,
        description="Self-hostable AI voice agent platform, compatible with VoIPBIN's v1.0 API.",
        lifespan=lifespan,
        openapi_url="/v1.0/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.platform = platform
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
    ):
        app.include_router(module.router)

    @app.get("/health", tags=["health"], summary="Liveness and database check")
    async def health() -> dict[str, Any]:
        from sqlalchemy import text

        async with platform.db.session() as session:
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
