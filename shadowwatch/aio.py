"""The async Shadow Watch client, as the seed's FastAPI apps use it (``await sw.track(...)``).

``track()`` talks to Redis with redis.asyncio (no thread hop); database work runs the sync
twin (``sw.sync``) in a worker thread so it never blocks the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable, Mapping

import redis
from redis.backoff import ExponentialBackoff

from workers.ingestion import cache as cache_mod
from workers.ingestion import stream

from .client import ShadowWatchSync


class ShadowWatch:
    """Async client; ``sw.sync`` is the sync twin with the same methods."""

    def __init__(self, database_url: str | None = None, redis_url: str | None = None,
                 license_key: str | None = None, **kwargs: Any):
        self.sync = ShadowWatchSync(database_url, redis_url, license_key, **kwargs)
        self._aredis = None
        self._aenqueue = None
        self._acache = None

    def __getattr__(self, name: str) -> Any:  # settings, hasher, _local_mode, _event_limit, ...
        return getattr(self.sync, name)

    @property
    def cache(self):
        """The async face of the sync twin's cache (same entries and counters):
        ``await sw.cache.set("custom:key", {...}, ttl_seconds=1800)``, ``await sw.cache.get(...)``."""
        if self._acache is None:
            self._acache = cache_mod.async_face(self.sync.cache, self._async_redis)
        return self._acache

    def _async_redis(self):
        if self._aredis is None:
            import redis.asyncio as aredis
            from redis.asyncio.retry import Retry as ARetry

            self._aredis = aredis.Redis.from_url(self.sync.redis_url, retry=ARetry(ExponentialBackoff(0.5, 0.02), 6),
                                                 retry_on_error=[redis.ConnectionError, redis.TimeoutError])
            self._aenqueue = self._aredis.register_script(stream.ENQUEUE_LUA)
        return self._aredis

    async def track(self, user_id: Any, entity_id: Any, action: Any, metadata: Any = None, *, event_id: Any = None,
                    ts: Any = None) -> str:
        s = self.sync
        event = s.build(user_id, entity_id, action, metadata, event_id, ts)
        if not s._group_ready:
            await asyncio.to_thread(s.ensure_group)
        if s._quota is None:
            await asyncio.to_thread(s.quota)
        self._async_redis()
        keys, args = s.enqueue_args([event])
        s.check_enqueued(await self._aenqueue(keys=keys, args=args), 1)
        s.forget_local([event["user_id"]])
        return event["event_id"]

    async def track_many(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        return await asyncio.to_thread(self.sync.track_many, list(events))

    async def init_database(self) -> None:
        await asyncio.to_thread(self.sync.init_database)

    async def get_profile(self, user_id: Any, *, fresh: bool = False) -> dict:
        return await asyncio.to_thread(lambda: self.sync.get_profile(user_id, fresh=fresh))

    async def verify_login(self, user_id: Any, request_context: Mapping[str, Any] | None = None) -> dict:
        return await asyncio.to_thread(self.sync.verify_login, user_id, request_context)

    async def confirm_login(self, user_id: Any, attempt_id: str, success: bool) -> dict:
        return await asyncio.to_thread(self.sync.confirm_login, user_id, attempt_id, success)

    async def delete_user(self, user_id: Any) -> dict[str, int]:
        return await asyncio.to_thread(self.sync.delete_user, user_id)

    async def set_holdings(self, user_id: Any, entity_ids: Iterable[str]) -> None:
        await asyncio.to_thread(self.sync.set_holdings, user_id, list(entity_ids))

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.stats)

    async def close(self) -> None:
        if self._aredis is not None:
            await self._aredis.aclose()
        self.sync.close()
