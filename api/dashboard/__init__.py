"""The operator dashboard: server-rendered pages over the API's own functions, served by the API process.

``install(app)`` mounts the vendored static files under ``/static`` and the pages
under ``/dashboard``. Pages call the same functions the JSON routes call (the
routers' handlers, the pools' public reads), so the dashboard and the API cannot
disagree; admin actions go through the same handlers as ``POST /shadow/...``.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from .session import Forbidden, NotLoggedIn

PREFIX = "/dashboard"


def _not_logged_in(request: Request, _: NotLoggedIn) -> Response:
    target = f"{PREFIX}/login?next={request.url.path}"
    if request.headers.get("HX-Request"):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _forbidden(request: Request, exc: Forbidden) -> Response:
    from .render import page

    return page(request, "forbidden.html", status=403, scope=exc.scope)


def install(app: FastAPI, static_mount: str) -> None:
    from .pages import activity, auth, discovery, overview, patterns, shadow

    app.mount(static_mount, StaticFiles(directory=str(files("api.dashboard") / "static")), name="static")
    for module in (auth, overview, discovery, patterns, shadow, activity):
        app.include_router(module.router)
    app.add_exception_handler(NotLoggedIn, _not_logged_in)
    app.add_exception_handler(Forbidden, _forbidden)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=307)
