"""The ingest pool's resources in one process: settings, engine, Redis, cache, keyed hasher.

The worker (``ingest.drain``) and the app-facing client (``shadowwatch``) both stand on this,
so they reach PostgreSQL and Redis the same way: one engine per URL and process, one Redis
client that absorbs a restart by retrying, one HMAC key.
"""

from __future__ import annotations

from typing import Any, Mapping

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from shared_models.settings import Settings, get_settings

from . import bounded, privacy, stream
from . import cache as cache_mod


def redis_retry() -> Retry:
    """A restarting Redis is absorbed by a short retry; a duplicate XADD after an ambiguous
    failure is harmless because PostgreSQL dedups on event_id."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.02), 6)


def make_cache(kind: str | Any, client: redis.Redis) -> Any:
    if kind == "redis":
        return cache_mod.RedisCache(client)
    if kind == "memory":
        return cache_mod.MemoryCache(counters=client)  # counts go to the fleet-wide hash
    return kind  # anything with the cache_mod.Cache interface


class IngestPool:
    """What every ingest operation needs, built once per process (after fork in a worker)."""

    def __init__(self, database_url: str | None = None, redis_url: str | None = None, *,
                 cache: str | Any = "redis", settings: Settings | None = None):
        from shared_models.db import normalize_url, service_urls

        self.settings = settings or get_settings()
        if database_url is None or redis_url is None:
            db, rd = service_urls()
            database_url, redis_url = database_url or db, redis_url or rd
        self.database_url = normalize_url(database_url)  # accepts +asyncpg / +psycopg2 / plain
        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(redis_url, retry=redis_retry(),
                                          retry_on_error=[redis.ConnectionError, redis.TimeoutError])
        self.cache: Any = make_cache(cache, self.redis)
        self.hasher = privacy.Hasher(privacy.hmac_key(self.settings))
        s = self.settings.ingest
        self.bound = bounded.Bound(s.cache_max_age_seconds, s.cache_max_new_events)
        self.entries = bounded.Entries(self.cache, privacy.hmac_key(self.settings), self.bound, self.redis)
        self._committed = self.redis.register_script(bounded.COMMITTED_LUA)

    @property
    def engine(self):
        from shared_models.db import get_engine

        return get_engine(self.database_url)

    @property
    def half_life_seconds(self) -> float:
        return self.settings.ingest.half_life_days * 86400.0

    def drain(self, time_budget: float | None = None) -> stream.DrainStats:
        """Drain the event stream into PostgreSQL in this process (what ``ingest.drain`` does)."""
        s = self.settings.ingest
        return stream.drain(self.redis, self.engine, batch_size=s.batch_size,
                            half_life_seconds=self.half_life_seconds, max_metadata_bytes=s.max_metadata_bytes,
                            hash_ip=self.hasher.ip, reclaim_idle_seconds=s.reclaim_idle_seconds,
                            time_budget=s.drain_seconds if time_budget is None else time_budget,
                            on_committed=self.note_committed)

    def note_committed(self, counts: Mapping[str, int]) -> None:
        """Users' events were just committed: their cached entries age by that many events
        (bounded staleness, workers/ingestion/bounded.py) instead of being dropped."""
        bounded.note_committed(self._committed, counts)

    def close(self) -> None:
        self.redis.close()
