"""The application factory. ``create_app()`` is what uvicorn serves (``api.app:create_app``, factory mode).

Extend it (the dashboard does): pass extra routers, or mount templates/static on
the returned app; ``STATIC_MOUNT`` is reserved for the dashboard's assets.
Interactive docs (``/docs``) use Swagger UI from the ``fastapi-offline`` package,
served by this process: no CDN.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
from typing import Iterable

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from . import errors
from .http import ConditionalGet, Timing

DOCS_ASSETS = "/docs-assets"
STATIC_MOUNT = "/static"
TAGS = [
    {"name": "discovery", "description": "Seed 002: politicians' trade findings (read by the main app)"},
    {"name": "shadow", "description": "Seed 004: champion/challenger models (`{status, data}` envelope)"},
    {"name": "activity", "description": "Seed 000: activity tracking for apps not written in Python"},
    {"name": "patterns", "description": "Detected patterns, flow latency, producer health"},
    {"name": "notifications", "description": "Alert subscriptions and deliveries (admin); per-user pattern alerts"},
    {"name": "operations", "description": "Health, metrics, the caller's key"},
]


def routers() -> list[APIRouter]:
    from .routers import activity, auth, discovery, market, notifications, operations, patterns, shadow

    return [discovery.router, shadow.router, activity.router, patterns.router, market.router, notifications.router,
            operations.router, auth.router]


def _docs(app: FastAPI) -> None:
    assets = importlib.resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title="quantpipe API",
                                   swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
                                   swagger_ui_parameters={"persistAuthorization": True})


async def _warm() -> None:
    """Open the async pool and compute the shadow status snapshot before the first request needs them
    (a worker that starts under load would otherwise queue its first requests behind both)."""
    from shared_models.settings import get_settings

    from .db import async_read
    from .shadow_status import status_body

    try:
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(get_settings().api.db_pool):
                await stack.enter_async_context(async_read())
        if get_settings().shadow.enabled:
            await status_body()
    except Exception as exc:  # noqa: BLE001 - the server starts without a database too (/health says 503)
        logging.getLogger("quantpipe.api").info("warm-up skipped: %s", exc)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI):
    warm = asyncio.create_task(_warm())
    try:
        yield
    finally:
        warm.cancel()
        from .db import async_engine

        if async_engine.cache_info().currsize:
            await async_engine().dispose()


def create_app(extra_routers: Iterable[APIRouter] = ()) -> FastAPI:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("quantpipe")
    except PackageNotFoundError:
        ver = "0"
    app = FastAPI(title="quantpipe API", version=ver, docs_url=None, redoc_url=None, openapi_tags=TAGS,
                  lifespan=_lifespan,
                  description="The HTTP API of quantpipe's pools. Authenticate with an API key "
                              "(`quantpipe api-key create --scope read --name NAME`) sent as "
                              "`Authorization: Bearer <key>` or `X-API-Key: <key>`.")
    errors.install(app)
    for router in [*routers(), *extra_routers]:
        app.include_router(router)
    _docs(app)
    from .dashboard import install as install_dashboard

    install_dashboard(app, STATIC_MOUNT)
    app.add_middleware(ConditionalGet)
    app.add_middleware(Timing)
    return app
