"""Bounded staleness of cached profiles/fingerprints (#13 item 6), on the session's PostgreSQL and Redis.

A cached entry is served while at most ``max_new_events`` of the user's events were committed
after its read and it is at most ``max_age_seconds`` old; ``fresh=True`` reads PostgreSQL. An entry
that is not the process's own signed entry for that key is never served."""

from __future__ import annotations

import dataclasses
import time

import pytest

from tests.workers.ingestion.helpers import make_license_key, new_user
from workers.ingestion import bounded
from workers.ingestion import cache as cache_mod


def _client(database_url, redis_url, cache="redis", **ingest):
    from shadowwatch import ShadowWatchSync
    from shared_models.settings import get_settings

    s = get_settings()
    s = dataclasses.replace(s, ingest=dataclasses.replace(s.ingest, **ingest))
    return ShadowWatchSync(database_url, redis_url, make_license_key(), cache=cache, settings=s)


@pytest.fixture()
def bounded_sw(database_url, redis_url):
    sw = _client(database_url, redis_url, cache_max_new_events=3, cache_max_age_seconds=30)
    yield sw
    sw.close()


def _track(sw, user, n):
    for _ in range(n):
        sw.track(user, "AAPL", "view")
    sw.drain_now(time_budget=30)


def _events(sw, user, **kw) -> int:
    return sw.get_profile(user, **kw)["totals"]["events"]


def test_event_bound_across_commits(bounded_sw):
    sw, user = bounded_sw, new_user()
    _track(sw, user, 2)
    assert _events(sw, user) == 2                  # miss: read and cached
    _track(sw, user, 3)                            # 3 new events committed: still within the bound
    local = dict(sw.cache.local.counts)
    assert _events(sw, user) == 2                  # served stale, counted as a hit
    assert sw.cache.local.counts["hits:profile"] == local.get("hits:profile", 0) + 1
    assert _events(sw, user, fresh=True) == 5      # fresh=True reads PostgreSQL (and re-caches)
    assert _events(sw, user) == 5
    _track(sw, user, 4)                            # 4 > 3: out of the bound
    assert _events(sw, user) == 9
    assert sw.fingerprint(user)["top_entities"] == ["AAPL"]


def test_commit_during_a_miss_is_counted(bounded_sw, redis_client):
    """The counter is taken before the database read: a commit between that read and the store ages
    the stored entry (here a profile read at 0 events, stored after 4 more were committed)."""
    sw, user = bounded_sw, new_user()
    key = cache_mod.profile_key(user)
    value, seen = sw.entries.get(key, user)
    assert value is None and redis_client.exists(cache_mod.committed_key(user))
    stale = {"user_id": user, "totals": {"events": 0}}
    _track(sw, user, 4)                            # committed while "our" read was in flight
    sw.entries.put(user, seen, {key: stale})
    assert sw.entries.get(key, user)[0] is None    # 4 new > 3
    assert _events(sw, user) == 4


def test_age_bound(database_url, redis_url):
    sw = _client(database_url, redis_url, cache_max_new_events=1000, cache_max_age_seconds=0.5)
    try:
        user = new_user()
        _track(sw, user, 1)
        assert _events(sw, user) == 1
        _track(sw, user, 1)
        assert _events(sw, user) == 1              # within both bounds
        time.sleep(0.6)
        assert _events(sw, user) == 2              # older than max_age: read again
    finally:
        sw.close()


def test_zero_new_events_means_every_commit_refreshes(database_url, redis_url):
    sw = _client(database_url, redis_url, cache_max_new_events=0)
    try:
        user = new_user()
        _track(sw, user, 1)
        assert _events(sw, user) == 1 and _events(sw, user) == 1
        _track(sw, user, 1)
        assert _events(sw, user) == 2
    finally:
        sw.close()


def test_forged_or_moved_entries_are_not_served(bounded_sw, redis_client):
    sw, a, b = bounded_sw, new_user(), new_user()
    _track(sw, a, 2)
    _track(sw, b, 1)
    assert _events(sw, a) == 2
    ka, kb = cache_mod.profile_key(a), cache_mod.profile_key(b)
    forged = [redis_client.get(ka),                                      # a's genuine entry under b's key
              b"0|" + b"0" * 64 + b'|{"user_id":"%s","library":[],"totals":{"events":99}}' % b.encode(),
              b'{"user_id":"%s","totals":{"events":99}}' % b.encode()]  # plain JSON, as before signing
    for raw in forged:
        redis_client.set(kb, raw, px=30_000)
        before = sw.cache.stats()
        p = sw.get_profile(b)
        assert p["user_id"] == b and p["totals"]["events"] == 1          # b's own data, from PostgreSQL
        after = sw.cache.stats()
        assert after["misses"] - before["misses"] >= 1 and after["hits"] == before["hits"]
        assert bounded.unseal(sw.entries._secret, kb, redis_client.get(kb))[1]["user_id"] == b
    # a signed entry whose content is another user's profile (same key, bad content) is refused too
    sw.entries.put(b, 0, {kb: {"user_id": a, "totals": {"events": 2}}})
    assert sw.get_profile(b)["user_id"] == b


def test_commits_create_no_key_for_users_nobody_reads(bounded_sw, redis_client):
    """Only counters someone created by reading move: an erased (or never read) user gets no key back."""
    sw, user = bounded_sw, new_user()
    _track(sw, user, 2)
    assert not redis_client.exists(cache_mod.committed_key(user))
    sw.get_profile(user)
    assert redis_client.exists(cache_mod.committed_key(user))
    sw.delete_user(user)
    assert not any(redis_client.exists(k) for k in cache_mod.user_keys(user))
    sw.note_committed({user: 1})
    assert not redis_client.exists(cache_mod.committed_key(user))


def test_memory_cache_counts_this_process_tracks(database_url, redis_url):
    sw = _client(database_url, redis_url, cache="memory", cache_max_new_events=2)
    try:
        user = new_user()
        _track(sw, user, 1)
        assert _events(sw, user) == 1
        _track(sw, user, 2)
        assert _events(sw, user) == 1              # 2 tracked here since: within the bound
        _track(sw, user, 1)
        assert _events(sw, user) == 4
        assert sw.cache.local.counts["misses:profile"] == 2 and sw.cache.local.counts["hits:profile"] == 1
    finally:
        sw.close()
