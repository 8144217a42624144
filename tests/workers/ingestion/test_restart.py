"""Server restarts during an ingest drain (#9 item 5): a PostgreSQL crash and a Redis SIGKILL while a
real worker drains end in exactly the result of a clean run (same rows, same interest scores), by
retry, not by hand, and an outage dead-letters no good event."""

from __future__ import annotations

import math
import signal
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.support import PrivateStack, WorkerProcess
from tests.workers.ingestion.helpers import make_license_key, new_user
from workers.ingestion.stream import GROUP, STREAM

pytestmark = pytest.mark.slow

N_EVENTS = 30_000
ENTITIES = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META", "GOOG", "BRK.B"]
ACTIONS = ["view", "search", "trade", "analyze", "alert", "watchlist_add", "watchlist_remove"]
HALF_LIFE = 14 * 86400.0


def _events(users: list[str | int]) -> list[dict]:
    now = time.time()
    return [{"user_id": users[i % len(users)], "entity_id": ENTITIES[(i * 7) % len(ENTITIES)],
             "action": ACTIONS[i % len(ACTIONS)], "event_id": str(uuid.uuid4()),
             "ts": now - 3600 + i * 0.1} for i in range(N_EVENTS)]


def _tables(engine) -> tuple[set, dict]:
    with engine.connect() as c:
        events = set(c.execute(text("SELECT event_id::text, user_id, entity_id, action FROM ingest_events")).all())
        interests = {(r.user_id, r.entity_id): (r.score, r.score_at, r.event_count, r.action_counts)
                     for r in c.execute(text("SELECT * FROM ingest_interests"))}
    return events, interests


def _clean_run(stack: PrivateStack, sw, built: list[dict]) -> tuple[set, dict]:
    """The same events written into a fresh database of the same server, without any fault."""
    from shared_models import migrate
    from shared_models.db import normalize_url
    from workers.ingestion import store

    admin = create_engine(stack.postgres.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text('CREATE DATABASE "clean"'))
    admin.dispose()
    migrate.upgrade(stack.postgres.url("clean"))
    engine = create_engine(normalize_url(stack.postgres.url("clean")))
    try:
        with engine.begin() as c:
            for i in range(0, len(built), 5000):
                store.write_events(c, built[i:i + 5000], HALF_LIFE)
        return _tables(engine)
    finally:
        engine.dispose()


def test_postgres_crash_and_redis_kill_during_a_drain_end_like_a_clean_run():
    from shadowwatch import ShadowWatchSync

    with PrivateStack() as stack:
        sw = ShadowWatchSync(stack.database_url, stack.redis_url, make_license_key())
        users = [new_user() for _ in range(50)] + [f"auth0|{uuid.uuid4().hex[:12]}" for _ in range(10)]
        raw = _events(users)
        built = [sw.build(**e) for e in raw]
        for i in range(0, len(raw), 1000):
            sw.track_many(raw[i:i + 1000])  # all queued first (AOF, fsync always): the faults hit the drain
        env = dict(stack.env, INGEST_BATCH_SIZE="500", INGEST_RECLAIM_IDLE_SECONDS="1", INGEST_DRAIN_SECONDS="3")
        engine = stack.engine()
        stop = threading.Event()

        def kick():  # what beat does every second
            while not stop.is_set():
                try:
                    stack.app.send_task("ingest.drain", queue="ingest", expires=5)
                except Exception:  # noqa: BLE001 - the broker is the Redis being restarted
                    pass
                stop.wait(0.5)

        def stored() -> int:
            try:
                with engine.connect() as c:
                    return c.execute(text("SELECT count(*) FROM ingest_events")).scalar_one()
            except Exception:  # noqa: BLE001 - PostgreSQL is down right now
                return -1

        def wait_rows(at_least: int, timeout: float = 120) -> None:
            deadline = time.monotonic() + timeout
            while stored() < at_least:
                assert time.monotonic() < deadline, f"drain stalled at {stored()} rows"
                time.sleep(0.05)

        kicker = threading.Thread(target=kick, daemon=True)
        worker = WorkerProcess("ingest", env=env, name="ingest-restart", control_app=stack.app).start()
        kicker.start()
        try:
            wait_rows(N_EVENTS // 5)
            assert stored() < N_EVENTS // 2  # the drain is in full swing
            stack.postgres.restart("immediate", down_seconds=2.0)  # a crash mid-drain: recovery on start
            engine.dispose()
            wait_rows(N_EVENTS // 2)
            assert stored() < N_EVENTS
            stack.redis.restart(sig=signal.SIGKILL)                 # the stream's server, mid-drain
            sw.redis.connection_pool.disconnect()
            deadline = time.monotonic() + 240
            while True:
                try:
                    done = (stored() == N_EVENTS and sw.redis.xlen(STREAM) == 0
                            and sw.redis.xpending(STREAM, GROUP)["pending"] == 0)
                except Exception:  # noqa: BLE001
                    done = False
                if done:
                    break
                assert time.monotonic() < deadline, f"not drained: {stored()} of {N_EVENTS} rows"
                time.sleep(0.2)
            assert worker.proc.poll() is None  # the worker survived both restarts
        finally:
            stop.set()
            kicker.join(10)
            worker.stop()
        events, interests = _tables(engine)
        with engine.connect() as c:
            dead = c.execute(text("SELECT count(*) FROM dead_letters")).scalar_one()
        engine.dispose()
        clean_events, clean_interests = _clean_run(stack, sw, built)
        sw.close()
    assert dead == 0  # an outage never dead-letters good events
    assert events == clean_events and len(events) == N_EVENTS
    assert interests.keys() == clean_interests.keys()
    for key, (score, score_at, n, counts) in interests.items():
        c_score, c_at, c_n, c_counts = clean_interests[key]
        assert (score_at, n, counts) == (c_at, c_n, c_counts), key
        assert math.isclose(score, c_score, rel_tol=1e-9, abs_tol=1e-9), key
