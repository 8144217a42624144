"""The watchdog raises producer_down once per outage and dead-letter bursts once per window."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import text

from shared_models import dead_letters
from shared_models.db import unit_of_work
from workers.notifications import watch

from .conftest import fast
from .helpers import drain, subscribe


def test_producer_down_once_per_outage(notify_db, notify_engine, engine, redis_client, receiver):
    subscribe(receiver.url, "patterns.producer_down")
    settings = fast()
    redis_client.set(watch.HEARTBEAT_KEY, f"{time.time():.3f}")
    assert watch.check_producer(notify_engine, redis_client, settings) is None      # fresh heartbeat
    stale = time.time() - 95
    redis_client.set(watch.HEARTBEAT_KEY, f"{stale:.3f}")
    first = watch.check_producer(notify_engine, redis_client, settings)
    assert first is not None and first.deliveries == 1
    assert watch.check_producer(notify_engine, redis_client, settings).duplicate     # same outage: no new alert
    drain(notify_engine, settings, engine)
    [r] = receiver.requests
    assert r.json["event"] == "patterns.producer_down" and r.json["data"]["age_seconds"] >= 95
    assert "heartbeat is 95 s old" in r.json["summary"] or "heartbeat is 9" in r.json["summary"]
    redis_client.set(watch.HEARTBEAT_KEY, f"{time.time() - 60:.3f}")                 # a new outage
    assert watch.check_producer(notify_engine, redis_client, settings).deliveries == 1
    redis_client.delete(watch.HEARTBEAT_KEY)


def test_a_producer_that_never_beat_is_not_down(notify_db, notify_engine, redis_client):
    redis_client.delete(watch.HEARTBEAT_KEY)
    with notify_engine.connect() as c:
        alive = c.execute(text("SELECT count(*) FROM integration_events WHERE checkpoint = 'PRODUCER_ALIVE'")).scalar()
    if alive == 0:
        assert watch.check_producer(notify_engine, redis_client, fast()) is None


def test_dead_letter_burst_once_per_pool_and_window(notify_db, notify_engine, engine, receiver):
    subscribe(receiver.url, "pipeline.dead_letters")
    settings = fast(dead_letter_burst=20, dead_letter_window_seconds=3600)
    pool = "t" + uuid.uuid4().hex[:8]  # other tests' dead letters of the real pools are in the window too

    def ours():
        return [r for r in watch.check_dead_letters(notify_engine, settings) if f":{pool}:" in r.key]

    with unit_of_work() as s:
        dead_letters.keep_many(s, pool, [dead_letters.Letter("ingest.drain", "action: unknown action 'x'",
                                                                 {"i": i}, "action") for i in range(19)])
    assert ours() == []
    with unit_of_work() as s:
        dead_letters.keep(s, pool, "ingest.drain", "user_id: missing", {"i": 19}, field="user_id")
    [raised] = ours()
    assert raised.deliveries == 1 and raised.key.startswith(f"pipeline.dead_letters:{pool}:")
    assert [r.duplicate for r in ours()] == [True]
    drain(notify_engine, settings, engine)
    [r] = [x for x in receiver.requests if x.json["data"]["pool"] == pool]
    d = r.json["data"]
    assert d["count"] == 20 and d["top_reasons"][0]["count"] == 19
    with engine.begin() as c:
        c.execute(text("DELETE FROM dead_letters WHERE pool = :p"), {"p": pool})


def test_dead_letter_check_takes_the_default_float_window(notify_db, notify_engine):
    """QUANTPIPE_NOTIFY_DEAD_LETTER_WINDOW_SECONDS defaults to 300.0 (a float) while PostgreSQL's
    extract() is numeric: the bucket must still compute (it raised TypeError under `demo --once`)."""
    assert isinstance(watch.check_dead_letters(notify_engine, fast(dead_letter_window_seconds=300.0)), list)
