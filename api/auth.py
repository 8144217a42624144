"""Authentication by API key (``Authorization: Bearer <key>`` or ``X-API-Key``) and scope checks.

``require("read")`` is a dependency: 401 without a key or with an unknown/revoked
one, 403 when the key lacks the scope (``admin`` holds every scope). The key is
looked up on every request (one indexed row), so a revocation takes effect at once
in every API process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from . import keys
from shared_models.settings import get_settings

from .db import unit_of_work
from .errors import ApiError

bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key in X-API-Key")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="quantpipe"'}


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: tuple[str, ...]

    @property
    def actor(self) -> str:
        """Who did it, as recorded in histories (promotions, rollbacks)."""
        return f"api:{self.name}"


class KeyCache:
    """Principals of verified keys, each for ``ttl`` seconds from its lookup (bounded: the oldest go first)."""

    def __init__(self, ttl: float, maxsize: int = 4096):
        self.ttl, self.maxsize = ttl, maxsize
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> Principal | None:
        hit = self._entries.get(digest)
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def put(self, digest: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.maxsize:
                now = time.monotonic()
                live = {k: v for k, v in self._entries.items() if v[0] > now}
                self._entries = dict(sorted(live.items(), key=lambda kv: kv[1][0])[-(self.maxsize // 2):])
            self._entries[digest] = (time.monotonic() + self.ttl, principal)


_cache: KeyCache | None = None
_pending: dict[str, asyncio.Future] = {}


def key_cache() -> KeyCache:
    global _cache
    if _cache is None:
        _cache = KeyCache(get_settings().api.key_cache_seconds)
    return _cache


def _presented(credentials: HTTPAuthorizationCredentials | None, x_api_key: str | None) -> str:
    presented = x_api_key or (credentials.credentials if credentials is not None else None)
    if not presented or not presented.strip():
        raise ApiError(401, "authentication required: send `Authorization: Bearer <key>` or `X-API-Key: <key>` "
                            "(create one with `quantpipe api-key create`)", headers=CHALLENGE)
    return presented.strip()


def _lookup(presented: str, digest: str) -> Principal:
    """The database lookup (and the at-most-once-a-minute ``last_used_at`` write), then the cache entry."""
    with unit_of_work() as session:
        row = keys.verify(session, presented)
        if row is None:
            raise ApiError(401, "invalid or revoked API key", headers=CHALLENGE)
        keys.touch(session, row)
        principal = Principal(row.key_id, row.name, tuple(row.scopes))
    key_cache().put(digest, principal)
    return principal


def authenticate(credentials: HTTPAuthorizationCredentials | None, x_api_key: str | None) -> Principal:
    """The caller's Principal (sync callers)."""
    presented = _presented(credentials, x_api_key)
    digest = keys.hash_key(presented)
    return key_cache().get(digest) or _lookup(presented, digest)


async def authenticate_async(credentials: HTTPAuthorizationCredentials | None, x_api_key: str | None) -> Principal:
    """The caller's Principal: from the cache on the event loop, else looked up in a worker thread."""
    from starlette.concurrency import run_in_threadpool

    presented = _presented(credentials, x_api_key)
    digest = keys.hash_key(presented)
    principal = key_cache().get(digest)
    if principal is not None:
        return principal
    if keys.KEY_RE.match(presented) is None:  # malformed: no lookup can match it
        raise ApiError(401, "invalid or revoked API key", headers=CHALLENGE)
    pending = _pending.get(digest)  # concurrent first requests with one key share one lookup
    if pending is None:
        pending = _pending[digest] = asyncio.ensure_future(run_in_threadpool(_lookup, presented, digest))
        pending.add_done_callback(lambda _: _pending.pop(digest, None))
    return await asyncio.shield(pending)


def require(scope: str):
    """Dependency factory: the request's Principal, holding ``scope``."""

    async def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                         x_api_key: str | None = Depends(header)) -> Principal:
        principal = await authenticate_async(credentials, x_api_key)
        if not keys.allows(principal.scopes, scope):
            raise ApiError(403, f"this key ({principal.key_id}, scopes {', '.join(principal.scopes)}) "
                                f"lacks the {scope!r} scope")
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


READ, TRACK, ADMIN = (Depends(require(s)) for s in ("read", "track", "admin"))
