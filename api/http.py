"""HTTP concerns shared by the routers: pagination, caching (ETag / Cache-Control), latency metrics.

Dependencies that do no I/O are ``async def``: FastAPI runs a sync one in a worker
thread, a hop per dependency per request.

Read endpoints declare ``Depends(cacheable(max_age))``; the ``ConditionalGet``
middleware then adds a strong ETag (hash of the body) to their 200 responses and
answers ``If-None-Match`` with 304. Responses are ``private`` (they need a key).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from fastapi import Query, Request, Response
from pydantic import BaseModel

from shared_models.settings import get_settings

MAX_OFFSET = 1_000_000


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page(default: int = 50):
    """Dependency: ``limit`` (1..QUANTPIPE_API_MAX_PAGE) and ``offset``; a limit above the maximum is a 422."""
    max_page = get_settings().api.max_page

    async def dependency(limit: int = Query(default, ge=1, le=max_page, description=f"Page size (max {max_page})"),
                         offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Rows to skip")) -> Page:
        return Page(limit, offset)

    return dependency


class PageInfo(BaseModel):
    limit: int
    offset: int
    next_offset: int | None


def page_info(p: Page, returned: int, has_more: bool) -> PageInfo:
    return PageInfo(limit=p.limit, offset=p.offset, next_offset=p.offset + returned if has_more else None)


def link_next(request: Request, response: Response, p: Page, has_more: bool) -> None:
    """RFC 8288 ``Link: <...>; rel="next"`` for endpoints that return a bare list (seed 002's shape)."""
    if has_more:
        url = request.url.include_query_params(limit=p.limit, offset=p.offset + p.limit)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'


def cacheable(max_age: int = 5):
    async def dependency(response: Response) -> None:
        response.headers["Cache-Control"] = f"private, max-age={max_age}"

    return dependency


async def no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


class ConditionalGet:
    """ASGI middleware: ETag + 304 for GET responses that carry a Cache-Control other than no-store."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                await self._finish(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, capture)

    @staticmethod
    async def _finish(scope, start: dict, body: bytes, send) -> None:
        headers = list(start.get("headers", []))
        names = {k.lower(): v for k, v in headers}
        cc = names.get(b"cache-control", b"")
        status = start.get("status", 200)
        if status == 200 and cc and b"no-store" not in cc:
            etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
            headers.append((b"etag", etag))
            inm = dict((k.lower(), v) for k, v in scope.get("headers", [])).get(b"if-none-match", b"")
            if etag in [t.strip().removeprefix(b"W/") for t in inm.split(b",")] or inm.strip() == b"*":
                keep = [(k, v) for k, v in headers if k.lower() in (b"etag", b"cache-control", b"vary")]
                await send({"type": "http.response.start", "status": 304, "headers": keep})
                await send({"type": "http.response.body", "body": b""})
                return
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Timing:
    """ASGI middleware: the HTTP latency histogram, labelled by route template (not raw path: bounded labels)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from .metrics import observe_request

        t0 = time.perf_counter()
        status = {"code": 500}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            observe_request(scope["method"], path, status["code"], time.perf_counter() - t0)
