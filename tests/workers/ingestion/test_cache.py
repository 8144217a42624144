"""MemoryCache and RedisCache: one interface, TTLs, shared counters."""

import time

import pytest

from workers.ingestion.cache import MemoryCache, RedisCache


@pytest.fixture(params=["memory", "redis"])
def cache(request, redis_client):
    if request.param == "memory":
        return MemoryCache()
    redis_client.delete("shadowwatch:cache:stats")
    return RedisCache(redis_client)


def test_set_get_expire_delete_and_counters(cache):
    cache.set("shadowwatch:test:a", {"x": [1, 2]}, ttl_seconds=0.3)
    cache.set("shadowwatch:test:b", 5, ttl_seconds=60)
    assert cache.get("shadowwatch:test:a") == {"x": [1, 2]}
    time.sleep(0.4)
    assert cache.get("shadowwatch:test:a") is None
    cache.delete("shadowwatch:test:b")
    assert cache.get("shadowwatch:test:b") is None
    s = cache.stats()
    assert (s["hits"], s["misses"]) == (1, 2) and abs(s["hit_rate"] - 1 / 3) < 1e-9


def test_redis_counters_shared_across_instances(redis_client):
    redis_client.delete("shadowwatch:cache:stats")
    a, b = RedisCache(redis_client), RedisCache(redis_client)
    a.set("shadowwatch:test:shared", 1, ttl_seconds=30)
    assert b.get("shadowwatch:test:shared") == 1
    a.get("shadowwatch:test:missing")
    assert b.stats()["hits"] == 1 and b.stats()["misses"] == 1
    redis_client.delete("shadowwatch:test:shared")
