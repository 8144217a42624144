"""Two caches behind one interface.

``MemoryCache`` serves a single process; ``RedisCache`` is shared by every instance
(and invalidated by the ingest workers after they commit). Values are JSON. Hit and
miss counters of RedisCache live in Redis, so they are shared across instances.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Protocol

PREFIX = "shadowwatch:"
LICENSE_TTL = 24 * 3600
FINGERPRINT_TTL = 3600
PROFILE_TTL = 300
_STATS_KEY = PREFIX + "cache:stats"


def license_key(key: str) -> str:
    return f"{PREFIX}license:{key}"


def fingerprint_key(user_id: int) -> str:
    return f"{PREFIX}fingerprint:{user_id}"


def profile_key(user_id: int) -> str:
    return f"{PREFIX}profile:{user_id}"


def user_keys(user_id: int) -> list[str]:
    return [profile_key(user_id), fingerprint_key(user_id)]


class Cache(Protocol):
    def get(self, key: str) -> Any | None: ...

    def set(self, key: str, value: Any, ttl_seconds: float) -> None: ...

    def delete(self, *keys: str) -> None: ...

    def stats(self) -> dict[str, float]: ...


def _rate(hits: int, misses: int) -> dict[str, float]:
    total = hits + misses
    return {"hits": hits, "misses": misses, "hit_rate": (hits / total) if total else 0.0}


class MemoryCache:
    """In-process cache with per-key expiry (one instance only)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is not None and item[0] <= time.monotonic():
                del self._data[key]
                item = None
            if item is None:
                self.misses += 1
                return None
            self.hits += 1
            return json.loads(item[1])

    def set(self, key: str, value: Any, ttl_seconds: float) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + ttl_seconds, json.dumps(value))

    def delete(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._data.pop(k, None)

    def keys(self) -> list[str]:
        return list(self._data)

    def stats(self) -> dict[str, float]:
        return _rate(self.hits, self.misses)


class RedisCache:
    """Cache shared by all instances; counters in one Redis hash."""

    # GET and count the hit or miss in one round trip
    _GET_LUA = """
    local v = redis.call('GET', KEYS[1])
    if v then redis.call('HINCRBY', KEYS[2], 'hits', 1) else redis.call('HINCRBY', KEYS[2], 'misses', 1) end
    return v
    """

    def __init__(self, client) -> None:
        self._r = client
        self._get = client.register_script(self._GET_LUA)

    def get(self, key: str) -> Any | None:
        raw = self._get(keys=[key, _STATS_KEY])
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, ttl_seconds: float) -> None:
        self._r.set(key, json.dumps(value), px=max(1, int(ttl_seconds * 1000)))

    def delete(self, *keys: str) -> None:
        if keys:
            self._r.delete(*keys)

    def stats(self) -> dict[str, float]:
        raw = self._r.hgetall(_STATS_KEY)
        return _rate(int(raw.get(b"hits", 0)), int(raw.get(b"misses", 0)))
