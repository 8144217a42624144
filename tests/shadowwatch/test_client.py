"""The ShadowWatch client end to end: track -> stream -> real ingest worker -> PostgreSQL -> profile."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from workers.ingestion.events import EventValidationError
from workers.ingestion.licenses import LicenseError
from tests.workers.ingestion.helpers import new_user, make_license_key, wait_for_events

TEST_IPS = ["203.0.113.57", "2001:db8:77::15", "198.51.100.23"]


@pytest.fixture()
def sw(database_url, redis_url):
    from shadowwatch import ShadowWatch

    client = ShadowWatch(database_url, redis_url, make_license_key()).sync
    yield client
    client.close()


def drain(workers):
    from workers.app import app

    return app.tasks["ingest.drain"].apply_async(ignore_result=False).get(timeout=120)


def test_import_path_and_url_forms(database_url, redis_url):
    from shadowwatch import ShadowWatch

    base = database_url.split("://", 1)[1]
    for scheme in ("postgresql", "postgresql+psycopg2", "postgresql+asyncpg"):
        sw = ShadowWatch(f"{scheme}://{base}", redis_url, make_license_key())
        assert sw.sync.database_url.startswith("postgresql+psycopg2://")


def test_track_drain_profile_ranking(sw, workers, engine):
    user = new_user()
    assert sw.get_profile(user)["library"] == []  # new users: empty library, nothing cached wrongly
    plan = [("AAPL", "trade")] * 3 + [("MSFT", "view")] * 4 + [("NVDA", "search"), ("TSLA", "alert")]
    for entity, action in plan:
        sw.track(user, entity, action, {"source": "test", "client_ip": TEST_IPS[0]})
    assert drain(workers)["read"] >= len(plan)
    assert wait_for_events(engine, [user], len(plan)) == len(plan)
    # 9 committed events are within the staleness bound (20): the empty profile cached above is
    # still what a plain read serves; fresh=True reads PostgreSQL and re-caches
    assert sw.get_profile(user)["library"] == []
    profile = sw.get_profile(user, fresh=True)
    lib = profile["library"]
    assert [e["entity_id"] for e in lib] == ["AAPL", "TSLA", "MSFT", "NVDA"]
    assert lib[0]["action_counts"] == {"trade": 3} and lib[0]["tier"] == "core" and lib[0]["score"] > 29
    assert profile["totals"]["events"] == len(plan) and profile["fingerprint"]["hash"]
    assert profile["fingerprint"]["top_entities"][0] == "AAPL"
    # cached; the app's own set_holdings drops it, so the next read has the pin and the new event
    hits = sw.cache.stats()["hits"]
    assert sw.get_profile(user) == profile and sw.cache.stats()["hits"] == hits + 1
    sw.set_holdings(user, ["nvda"])
    sw.track(user, "AMZN", "view")
    drain(workers)
    wait_for_events(engine, [user], len(plan) + 1)
    lib2 = sw.get_profile(user)["library"]
    assert lib2[0]["entity_id"] == "NVDA" and lib2[0]["pinned"] and "AMZN" in {e["entity_id"] for e in lib2}


def test_retried_event_id_counted_once(sw, workers, engine):
    user, eid = new_user(), uuid.uuid4()
    for _ in range(3):
        assert sw.track(user, "AAPL", "trade", event_id=eid) == str(eid)
    drain(workers)
    wait_for_events(engine, [user], 1)
    drain(workers)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM ingest_events WHERE user_id = :u"), {"u": user}).scalar() == 1
        assert c.execute(text("SELECT event_count FROM ingest_interests WHERE user_id = :u"),
                         {"u": user}).scalar() == 1


def test_invalid_track_raises_naming_field_and_sends_nothing(sw, redis_client):
    before = redis_client.xlen("shadowwatch:events")
    with pytest.raises(EventValidationError, match="^action:"):
        sw.track(new_user(), "AAPL", "teleport")
    with pytest.raises(EventValidationError, match=r"^events\[1\]\.entity_id:"):
        sw.track_many([{"user_id": 1, "entity_id": "AAPL", "action": "view"},
                       {"user_id": 1, "entity_id": "no spaces!", "action": "view"}])
    assert redis_client.xlen("shadowwatch:events") <= before  # (workers may drain meanwhile, never add)


def test_licence_limit_shared_across_instances(database_url, redis_url):
    from shadowwatch import ShadowWatchSync

    key = make_license_key(events=10)
    a, b = ShadowWatchSync(database_url, redis_url, key), ShadowWatchSync(database_url, redis_url, key)
    user = new_user()
    for i in range(6):
        a.track(user, "AAPL", "view")
    for i in range(4):
        b.track(user, "AAPL", "view")
    with pytest.raises(LicenseError, match="event limit reached"):
        a.track(user, "AAPL", "view")
    with pytest.raises(LicenseError, match="event limit reached"):
        b.track_many([{"user_id": user, "entity_id": "AAPL", "action": "view"}])
    assert a.usage()["used"] == 10 and b.usage()["limit"] == 10


def test_expired_or_tampered_licence_refused(database_url, redis_url):
    from shadowwatch import ShadowWatchSync

    import time

    expired = make_license_key(days=1, now=time.time() - 2 * 86400)
    with pytest.raises(LicenseError, match="expired"):
        ShadowWatchSync(database_url, redis_url, expired).track(new_user(), "AAPL", "view")
    forged = make_license_key(tier="trial").replace("SW-TRIAL-", "SW-PROD-")
    with pytest.raises(LicenseError, match="does not match"):
        ShadowWatchSync(database_url, redis_url, forged).track(new_user(), "AAPL", "view")


def test_dev_mode_warns_and_limits(database_url, redis_url, redis_client):
    from shadowwatch import ShadowWatchSync

    used = int(redis_client.get("shadowwatch:usage:dev") or 0)
    sw = ShadowWatchSync(database_url, redis_url, None, dev_event_limit=used + 2)
    with pytest.warns(UserWarning, match="local dev mode"):
        sw.track(new_user(), "AAPL", "view")
    sw.track(new_user(), "AAPL", "view")
    with pytest.raises(LicenseError, match="local dev mode"):
        sw.track(new_user(), "AAPL", "view")
    assert redis_client.ttl("shadowwatch:usage:dev") > 0


def test_async_api(database_url, redis_url, workers, engine):
    from shadowwatch import ShadowWatch

    async def scenario():
        sw = ShadowWatch(database_url.replace("postgresql+psycopg2://", "postgresql+asyncpg://"), redis_url,
                         make_license_key())
        await sw.init_database()
        user = new_user()
        ids = [await sw.track(user_id=user, entity_id="AAPL", action="view", metadata={"n": i}) for i in range(5)]
        await sw.track_many([{"user_id": user, "entity_id": "MSFT", "action": "trade"}])
        await asyncio.to_thread(drain, workers)
        await asyncio.to_thread(wait_for_events, engine, [user], 6)
        profile = await sw.get_profile(user_id=user)
        login = await sw.verify_login(user_id=user, request_context={
            "ip_address": TEST_IPS[1], "user_agent": "curl/8.0", "device_fingerprint": "d1"})
        await sw.confirm_login(user, login["attempt_id"], True)
        stats = await sw.stats()
        deleted = await sw.delete_user(user)
        await sw.close()
        return ids, profile, login, stats, deleted

    ids, profile, login, stats, deleted = asyncio.run(scenario())
    assert len(set(ids)) == 5
    assert [e["entity_id"] for e in profile["library"]] == ["MSFT", "AAPL"]
    assert 0 <= login["trust_score"] < 0.5 and login["action"] in ("require_mfa", "block")
    assert stats["users"] >= 1 and stats["license"]["mode"] == "licensed"
    assert deleted["ingest_events"] == 6


def test_delete_user_removes_every_row_and_cache_key(sw, workers, engine, redis_client):
    user = new_user()
    for i in range(20):
        sw.track(user, ["AAPL", "MSFT"][i % 2], "view", {"ip": TEST_IPS[2]})
    drain(workers)
    wait_for_events(engine, [user], 20)
    sw.set_holdings(user, ["AAPL"])
    r = sw.verify_login(user, {"ip_address": TEST_IPS[2], "user_agent": "curl/8.0", "device_fingerprint": "x"})
    sw.confirm_login(user, r["attempt_id"], True)
    sw.get_profile(user)
    with engine.begin() as c:
        c.execute(text("INSERT INTO dead_letters (pool, source, field, reason, payload) "
                       "VALUES ('ingest', 'test', 'action', 'x', CAST(:p AS jsonb))"), {"p": f'{{"user_id": {user}}}'})
    assert any(str(user) in k.decode() for k in redis_client.keys("shadowwatch:*"))
    sw.track(user, "NVDA", "view")  # still queued: the tombstone makes the worker skip it later
    sw.delete_user(user)
    drain(workers)
    with engine.connect() as c:
        tables = c.execute(text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                                "AND table_type = 'BASE TABLE'")).scalars().all()
        for t in tables:
            hits = c.execute(text(f'SELECT count(*) FROM "{t}" x WHERE x::text ~ :pat'),
                             {"pat": rf"\m{user}\M"}).scalar()
            assert hits == 0, t
    assert not [k for k in redis_client.keys("shadowwatch:*") if str(user) in k.decode()]


def test_eight_concurrent_producers_same_pair_end_to_end(sw, workers, engine):
    """8 producer threads track() the same (user, entity) while two consumers drain concurrently."""
    import math
    import threading
    import time as _time

    user, t0 = new_user(), _time.time() - 3 * 86400
    plans = [[(t0 + p * 1000 + i * 37.0, ("view", "trade", "search")[(p + i) % 3]) for i in range(100)]
             for p in range(8)]
    barrier = threading.Barrier(8)

    def produce(plan):
        barrier.wait()
        for ts, action in plan:
            sw.track(user, "NVDA", action, ts=ts)

    threads = [threading.Thread(target=produce, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    local = threading.Thread(target=sw.drain_now, kwargs={"time_budget": 30})
    local.start()
    drain(workers)
    local.join()
    wait_for_events(engine, [user], 800, kick=lambda: drain(workers))
    from workers.ingestion.events import ACTIONS

    flat = [(ts, ACTIONS[a]) for plan in plans for ts, a in plan]
    t_max, h = max(ts for ts, _ in flat), sw.half_life_seconds
    expected = sum(w * 2 ** (-(t_max - ts) / h) for ts, w in flat)
    with engine.connect() as c:
        rows = c.execute(text("SELECT score, event_count FROM ingest_interests WHERE user_id = :u"),
                         {"u": user}).all()
    assert len(rows) == 1 and rows[0].event_count == 800
    assert math.isclose(rows[0].score, expected, rel_tol=1e-9)


def test_zz_database_dump_has_no_test_ip(engine):
    """Runs last in this module: every row of every table, as text, contains no test IP."""
    with engine.connect() as c:
        tables = c.execute(text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                                "AND table_type = 'BASE TABLE'")).scalars().all()
        dump = "\n".join(r for t in tables for r in c.execute(text(f'SELECT x::text FROM "{t}" x')).scalars())
    assert "iphash:" in dump  # the metadata IPs were there, hashed
    for ip in TEST_IPS:
        assert ip not in dump
