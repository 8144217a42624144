"""Two caches behind one interface, each with a sync and an async face.

``MemoryCache`` serves a single process; ``RedisCache`` is shared by every instance
(and invalidated by the ingest workers after they commit). Values are JSON.

Hit and miss counters are fleet-wide, in the Redis hash ``shadowwatch:cache:stats``
(overall and per kind of key: license, profile, fingerprint, app), so ``ingest stats``
shows the rate of every app process together. RedisCache counts in the same Lua call as
its GET (one round trip); MemoryCache counts locally and adds its counts to the hash at
most once a second (and on ``flush()``/``stats()``), so a memory hit stays a dict lookup.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Protocol

PREFIX = "shadowwatch:"
LICENSE_TTL = 24 * 3600
STATS_KEY = PREFIX + "cache:stats"
KINDS = ("license", "profile", "fingerprint")
FLUSH_SECONDS = 1.0


def license_key(key: str) -> str:
    return f"{PREFIX}license:{key}"


def fingerprint_key(user_id: Any) -> str:
    return f"{PREFIX}fingerprint:{user_id}"


def profile_key(user_id: Any) -> str:
    return f"{PREFIX}profile:{user_id}"


def committed_key(user_id: Any) -> str:
    """Events of the user committed so far (the staleness counter of workers/ingestion/bounded.py)."""
    return f"{PREFIX}committed:{user_id}"


def entry_keys(user_id: Any) -> list[str]:
    """The user's cached entries (what a write by the app itself drops)."""
    return [profile_key(user_id), fingerprint_key(user_id)]


def user_keys(user_id: Any) -> list[str]:
    """Every key naming the user (what an erasure deletes)."""
    return [*entry_keys(user_id), committed_key(user_id)]


def kind_of(key: str) -> str:
    """license / profile / fingerprint for quantpipe's own keys, app for everything else."""
    if key.startswith(PREFIX):
        kind = key[len(PREFIX):].split(":", 1)[0]
        if kind in KINDS:
            return kind
    return "app"


class Cache(Protocol):
    def get(self, key: str) -> Any | None: ...

    def set(self, key: str, value: Any, ttl_seconds: float) -> None: ...

    def delete(self, *keys: str) -> None: ...

    def stats(self) -> dict[str, Any]: ...


def _rate(hits: int, misses: int) -> dict[str, float]:
    total = hits + misses
    return {"hits": hits, "misses": misses, "hit_rate": (hits / total) if total else 0.0}


def rates(raw: dict) -> dict[str, Any]:
    """The stats hash (bytes or str fields) as overall and per-kind hit rates."""
    counts = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
    out: dict[str, Any] = _rate(counts.get("hits", 0), counts.get("misses", 0))
    out["by_kind"] = {kind: _rate(counts.get(f"hits:{kind}", 0), counts.get(f"misses:{kind}", 0))
                      for kind in (*KINDS, "app") if counts.get(f"hits:{kind}") or counts.get(f"misses:{kind}")}
    return out


def fleet_stats(client) -> dict[str, Any]:
    return rates(client.hgetall(STATS_KEY))


class LocalCounts:
    """This process's hits and misses (what ``ingest simulate`` reports as its own share)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, key: str, hit: bool) -> tuple[str, str]:
        word = "hits" if hit else "misses"
        fields = (word, f"{word}:{kind_of(key)}")
        for f in fields:
            self.counts[f] = self.counts.get(f, 0) + 1
        return fields

    def stats(self) -> dict[str, Any]:
        return rates(dict(self.counts))


class MemoryCache:
    """In-process cache with per-key expiry (one instance only); counters flushed to Redis if given."""

    def __init__(self, counters=None) -> None:
        self._data: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._redis = counters  # a redis.Redis for the fleet-wide counters, or None (process-local only)
        self._pending: dict[str, int] = {}
        self._flushed_at = time.monotonic()
        self.local = LocalCounts()

    @property
    def hits(self) -> int:
        return self.local.counts.get("hits", 0)

    @property
    def misses(self) -> int:
        return self.local.counts.get("misses", 0)

    def _count(self, key: str, hit: bool) -> None:
        for field in self.local.add(key, hit):
            self._pending[field] = self._pending.get(field, 0) + 1

    def get(self, key: str, *, flush: bool = True) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is not None and item[0] <= time.monotonic():
                del self._data[key]
                item = None
            self._count(key, item is not None)
            value = None if item is None else json.loads(item[1])
        if flush and self.flush_due():
            self.flush()
        return value

    def recount_as_miss(self, key: str) -> None:
        """A hit the caller refused (outside its staleness bound): count it as a miss instead."""
        with self._lock:
            for word, n in (("hits", -1), ("misses", 1)):
                for f in (word, f"{word}:{kind_of(key)}"):
                    self.local.counts[f] = self.local.counts.get(f, 0) + n
                    self._pending[f] = self._pending.get(f, 0) + n

    def flush_due(self) -> bool:
        return self._redis is not None and bool(self._pending) and \
            time.monotonic() - self._flushed_at >= FLUSH_SECONDS

    def flush(self) -> None:
        """Add the counts since the last flush to the fleet-wide hash (one pipelined round trip)."""
        if self._redis is None:
            return
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flushed_at = time.monotonic()
        if pending:
            pipe = self._redis.pipeline(transaction=False)
            for field, n in pending.items():
                pipe.hincrby(STATS_KEY, field, n)
            pipe.execute()

    def set(self, key: str, value: Any, ttl_seconds: float) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + ttl_seconds, json.dumps(value))

    def delete(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._data.pop(k, None)

    def keys(self) -> list[str]:
        return list(self._data)

    def stats(self) -> dict[str, Any]:
        """Fleet-wide when counting into Redis, else this process's counts."""
        if self._redis is None:
            return self.local.stats()
        self.flush()
        return fleet_stats(self._redis)


# GET and count the hit or miss (overall and for the key's kind) in one round trip.
GET_LUA = """
local v = redis.call('GET', KEYS[1])
local word = v and 'hits' or 'misses'
redis.call('HINCRBY', KEYS[2], word, 1)
redis.call('HINCRBY', KEYS[2], word .. ':' .. ARGV[1], 1)
return v
"""


def _ttl_ms(ttl_seconds: float) -> int:
    return max(1, int(ttl_seconds * 1000))


class RedisCache:
    """Cache shared by all instances; counters in one Redis hash."""

    def __init__(self, client) -> None:
        self._r = client
        self._get = client.register_script(GET_LUA)
        self.local = LocalCounts()

    def get(self, key: str) -> Any | None:
        raw = self._get(keys=[key, STATS_KEY], args=[kind_of(key)])
        self.local.add(key, raw is not None)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, ttl_seconds: float) -> None:
        self._r.set(key, json.dumps(value), px=_ttl_ms(ttl_seconds))

    def delete(self, *keys: str) -> None:
        if keys:
            self._r.delete(*keys)

    def stats(self) -> dict[str, Any]:
        return fleet_stats(self._r)

    def flush(self) -> None:
        """Nothing buffered: RedisCache counts as it reads."""


# -- async faces (``await sw.cache.set(...)`` on the async client) ---------------------------------------------

class AsyncRedisCache:
    """RedisCache over redis.asyncio: same keys, values and counters, no thread hop."""

    def __init__(self, aclient) -> None:
        self._r = aclient
        self._get = aclient.register_script(GET_LUA)

    async def get(self, key: str) -> Any | None:
        raw = await self._get(keys=[key, STATS_KEY], args=[kind_of(key)])
        return None if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any, ttl_seconds: float) -> None:
        await self._r.set(key, json.dumps(value), px=_ttl_ms(ttl_seconds))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._r.delete(*keys)

    async def stats(self) -> dict[str, Any]:
        return rates(await self._r.hgetall(STATS_KEY))


class AsyncMemoryCache:
    """The sync twin's MemoryCache (same entries) with awaitable methods; the counter flush runs
    in a worker thread so the event loop never waits on Redis."""

    def __init__(self, memory: MemoryCache) -> None:
        self.sync = memory

    async def get(self, key: str) -> Any | None:
        value = self.sync.get(key, flush=False)
        if self.sync.flush_due():
            await asyncio.to_thread(self.sync.flush)
        return value

    async def set(self, key: str, value: Any, ttl_seconds: float) -> None:
        self.sync.set(key, value, ttl_seconds)

    async def delete(self, *keys: str) -> None:
        self.sync.delete(*keys)

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.stats)


class AsyncThreadCache:
    """Any sync cache with the Cache interface, awaited through a worker thread."""

    def __init__(self, cache: Any) -> None:
        self.sync = cache

    async def get(self, key: str) -> Any | None:
        return await asyncio.to_thread(self.sync.get, key)

    async def set(self, key: str, value: Any, ttl_seconds: float) -> None:
        await asyncio.to_thread(self.sync.set, key, value, ttl_seconds)

    async def delete(self, *keys: str) -> None:
        await asyncio.to_thread(self.sync.delete, *keys)

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.stats)


def async_face(cache: Any, aclient_factory) -> Any:
    """The async face of a sync cache; ``aclient_factory()`` gives the redis.asyncio client."""
    if isinstance(cache, RedisCache):
        return AsyncRedisCache(aclient_factory())
    if isinstance(cache, MemoryCache):
        return AsyncMemoryCache(cache)
    return AsyncThreadCache(cache)
