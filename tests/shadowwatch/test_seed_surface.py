"""The parts of the client surface the seed documents call, one by one (the verbatim snippets
are in test_seed_snippets.py)."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from workers.ingestion import events as ev
from workers.ingestion.events import EventValidationError
from workers.ingestion.licenses import LicenseError
from tests.workers.ingestion.helpers import make_license_key, new_user, wait_for_events


@pytest.fixture()
def sw(database_url, redis_url):
    from shadowwatch import ShadowWatchSync

    client = ShadowWatchSync(database_url, redis_url, make_license_key())
    yield client
    client.close()


def _build(action, metadata=None):
    return ev.build_event(user_id=1, entity_id="AAPL", action=action, metadata=metadata,
                          max_metadata_bytes=4096, hash_ip=lambda ip: "h")


def test_seed_watchlist_form_maps_onto_the_weights():
    assert _build("watchlist", {"action": "add"})["action"] == "watchlist_add"
    assert _build("watchlist", {"action": "remove"})["action"] == "watchlist_remove"
    assert _build("watchlist")["action"] == "watchlist_add"  # the load test's bare "watchlist"
    assert _build("watchlist", {"action": "add"})["weight"] == ev.ACTIONS["watchlist_add"]
    assert _build("watchlist", {"action": "remove"})["weight"] == ev.ACTIONS["watchlist_remove"] < 0
    assert _build("watchlist_add")["action"] == "watchlist_add"  # the explicit names stay
    with pytest.raises(EventValidationError, match="^metadata.action:") as err:
        _build("watchlist", {"action": "rename"})
    assert err.value.field == "metadata.action"
    with pytest.raises(EventValidationError, match="^action: unknown action 'teleport'.*watchlist"):
        _build("teleport")


def test_seed_watchlist_stored_with_its_weight(sw, workers, engine):
    from workers.app import app

    user = new_user()
    sw.track(user, "AAPL", "watchlist", metadata={"action": "add"})
    sw.track(user, "AAPL", "watchlist", metadata={"action": "remove"})
    sw.track(user, "MSFT", "watchlist")
    app.tasks["ingest.drain"].apply_async(ignore_result=False).get(timeout=120)
    assert wait_for_events(engine, [user], 3) == 3
    lib = {e["entity_id"]: e for e in sw.get_profile(user)["library"]}
    assert lib["AAPL"]["action_counts"] == {"watchlist_add": 1, "watchlist_remove": 1}
    assert lib["MSFT"]["action_counts"] == {"watchlist_add": 1}
    assert lib["AAPL"]["score"] == pytest.approx(2.0, abs=1e-3) and lib["MSFT"]["score"] == pytest.approx(5, abs=1e-3)


def test_local_mode_and_event_limit(database_url, redis_url):
    from shadowwatch import ShadowWatch

    dev = ShadowWatch(database_url=database_url, license_key=None, redis_url=redis_url)
    assert dev._local_mode is True and dev._event_limit == dev.settings.ingest.dev_event_limit
    unlimited = ShadowWatch(database_url=database_url, license_key=make_license_key(events=None), redis_url=redis_url)
    assert not unlimited._local_mode
    assert unlimited._event_limit is None
    limited = ShadowWatch(database_url=database_url, license_key=make_license_key(events=500), redis_url=redis_url)
    assert limited._event_limit == 500 and limited.sync.usage()["limit"] == 500
    assert unlimited.sync.usage()["limit"] is None and unlimited.sync.quota()[1] == 0  # 0: no limit in the script


def test_unlimited_licence_is_never_refused(database_url, redis_url, redis_client):
    from shadowwatch import ShadowWatchSync

    sw = ShadowWatchSync(database_url, redis_url, make_license_key(events=None))
    counter = sw.quota()[0]
    redis_client.set(counter, 10**12)  # far beyond any limit: still accepted
    sw.track(new_user(), "AAPL", "view")
    assert int(redis_client.get(counter)) == 10**12 + 1


@pytest.mark.parametrize("key", ["SW-PROD-YOUR-KEY", "SW-PROD-XXXX-XXXX-XXXX-XXXX", "SW-TRIAL-XXXX-...", "hello"])
def test_placeholder_key_is_reported_invalid_not_a_missing_public_key(database_url, redis_url, key, monkeypatch,
                                                                      tmp_path):
    import dataclasses

    from shadowwatch import ShadowWatchSync
    from shared_models.settings import get_settings

    # even where no public key is configured at all, the key itself is what is reported
    s = get_settings()
    settings = dataclasses.replace(s, home=tmp_path, ingest=dataclasses.replace(s.ingest, license_public_key=None))
    sw = ShadowWatchSync(database_url, redis_url, key, settings=settings)
    with pytest.raises(LicenseError, match="this licence key is invalid"):
        sw.track(new_user(), "AAPL", "view")
    with pytest.raises(LicenseError, match="this licence key is invalid"):
        sw._event_limit


def test_async_client_has_an_async_cache_and_the_sync_one_a_sync_cache(database_url, redis_url, redis_client):
    from shadowwatch import ShadowWatch

    key = f"custom:key:{new_user()}"

    async def scenario():
        sw = ShadowWatch(database_url=database_url, license_key=make_license_key(), redis_url=redis_url)
        await sw.cache.set(key, {"data": "value"}, ttl_seconds=1800)
        got = await sw.cache.get(key)
        stats = await sw.cache.stats()
        await sw.cache.delete(key)
        gone = await sw.cache.get(key)
        await sw.close()
        return got, stats, gone

    got, stats, gone = asyncio.run(scenario())
    assert got == {"data": "value"} and gone is None and stats["by_kind"]["app"]["hits"] >= 1
    from shadowwatch import ShadowWatchSync

    s = ShadowWatchSync(database_url, redis_url, make_license_key())
    s.cache.set(key, {"n": 1}, ttl_seconds=1800)
    assert 1790 < redis_client.pttl(key) / 1000 <= 1800  # the sync twin writes the same store, synchronously
    assert s.cache.get(key) == {"n": 1}
    s.cache.delete(key)


def test_async_memory_cache_shares_entries_with_the_sync_twin(database_url, redis_url):
    from shadowwatch import ShadowWatch

    async def scenario():
        sw = ShadowWatch(database_url, redis_url, make_license_key(), cache="memory")
        await sw.cache.set("custom:mem", [1, 2], ttl_seconds=60)
        return sw, await sw.cache.get("custom:mem")

    sw, got = asyncio.run(scenario())
    assert got == [1, 2] and sw.sync.cache.get("custom:mem") == [1, 2]


def test_memory_cache_counts_are_fleet_wide(database_url, redis_url, redis_client):
    """Two MemoryCache instances (two app processes' worth) add up in the shared hash."""
    from shadowwatch import ShadowWatchSync
    from workers.ingestion.cache import fleet_stats

    before = fleet_stats(redis_client)
    a = ShadowWatchSync(database_url, redis_url, make_license_key(), cache="memory")
    b = ShadowWatchSync(database_url, redis_url, make_license_key(), cache="memory")
    a.cache.set("custom:a", 1, ttl_seconds=60)
    for _ in range(3):
        a.cache.get("custom:a")
    b.cache.get("custom:a")  # another process's memory: a miss
    a.close()
    b.close()
    after = fleet_stats(redis_client)
    assert after["hits"] - before["hits"] == 3 and after["misses"] - before["misses"] == 1
    assert after["by_kind"]["app"]["hits"] - before.get("by_kind", {}).get("app", {"hits": 0})["hits"] == 3


def test_string_timestamps_still_refused_and_cache_kind_of_keys():
    from workers.ingestion.cache import kind_of

    assert kind_of("shadowwatch:license:SW-PROD-x") == "license"
    assert kind_of("shadowwatch:profile:42") == "profile" and kind_of("shadowwatch:fingerprint:u") == "fingerprint"
    assert kind_of("custom:key") == "app" and kind_of("shadowwatch:events") == "app"
    with pytest.raises(EventValidationError, match="^ts:"):
        ev.build_event(user_id=1, entity_id="AAPL", action="view", ts="yesterday", max_metadata_bytes=10,
                       hash_ip=str, now=time.time())


@pytest.mark.parametrize("given, stored", [
    (42, "42"), ("42", "42"), ("user_2NNEqL2nrIRdJ194ndJqAHwEfxC", "user_2NNEqL2nrIRdJ194ndJqAHwEfxC"),
    ("auth0|5f7c8ec7c33c6c004bbafe82", "auth0|5f7c8ec7c33c6c004bbafe82"), ("a.b+tag@example.com", "a.b+tag@example.com"),
    ("3F2504E0-4F89-11D3-9A0C-0305E82C3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    (__import__("uuid").UUID("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    ("x" * 64, "x" * 64),
])
def test_user_ids_of_every_common_form_are_accepted(given, stored):
    assert ev.check_user_id(given) == stored


@pytest.mark.parametrize("bad", [0, -1, 2**63, True, 1.5, None, b"42", "", "x" * 65, "has space", "tab\t",
                                 "ünïcode", "semi;colon", "quote\"", "new\nline", ["1"]])
def test_bad_user_ids_are_refused_naming_the_field(bad):
    with pytest.raises(EventValidationError, match="^user_id:") as err:
        ev.check_user_id(bad)
    assert err.value.field == "user_id"


def test_string_and_uuid_ids_work_end_to_end(sw, workers, engine, redis_client):
    """track, profile, trust, stats and erasure with an app's string and UUID ids."""
    import uuid

    from workers.app import app

    users = [f"auth0|{uuid.uuid4().hex[:24]}", uuid.uuid4(), f"user_{uuid.uuid4().hex}"]
    keys = [ev.check_user_id(u) for u in users]
    for u in users:
        for entity, action in (("AAPL", "trade"), ("MSFT", "view"), ("AAPL", "watchlist")):
            sw.track(u, entity, action, metadata={"action": "add"} if action == "watchlist" else None)
    app.tasks["ingest.drain"].apply_async(ignore_result=False).get(timeout=120)
    assert wait_for_events(engine, keys, 9) == 9
    for u, k in zip(users, keys):
        p = sw.get_profile(u)
        assert p["user_id"] == k and [e["entity_id"] for e in p["library"]] == ["AAPL", "MSFT"]
        r = sw.verify_login(u, {"ip_address": "203.0.113.9", "user_agent": "curl/8", "device_fingerprint": "d"})
        sw.confirm_login(u, r["attempt_id"], True)
        again = sw.verify_login(u, {"ip_address": "203.0.113.10", "user_agent": "curl/8", "device_fingerprint": "d"})
        assert again["signals"]["device"]["code"] == "known" and again["user_id"] == k
    assert sw.get_profile(str(users[1]).upper())["user_id"] == keys[1]  # a UUID in any case is one user
    top = {row["user_id"] for row in sw.stats(top=1000)["top_users"]}
    assert set(keys) <= top
    with engine.connect() as c:
        seen = c.execute(text("SELECT count(*) FROM shadow_watch_activities WHERE user_id = ANY(:u)"),
                         {"u": keys}).scalar_one()
    assert seen == 9
    sw.delete_user(users[0])
    with engine.connect() as c:
        tables = ("ingest_events", "ingest_interests", "ingest_login_attempts", "ingest_known_signals")
        left = {t: c.execute(text(f"SELECT count(*) FROM {t} WHERE user_id = :u"), {"u": keys[0]}).scalar_one()
                for t in tables}
        others = c.execute(text("SELECT count(*) FROM ingest_events WHERE user_id = :u"), {"u": keys[1]}).scalar_one()
    assert set(left.values()) == {0} and others == 3
    assert not [k for k in redis_client.keys("shadowwatch:*") if keys[0].encode() in k]
