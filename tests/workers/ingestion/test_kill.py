"""Crash proofs: SIGKILL the ingest worker mid-batch, again and again, during a 50,000-event run;
restart Redis (SIGKILL, appendfsync always) while producers are tracking."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from workers.ingestion.stream import GROUP, STREAM
from tests.workers.ingestion.helpers import count_events, make_license_key, new_user
from tests.support import RedisServer, WorkerProcess
from workers.app import app

N_EVENTS = 50_000
ENTITIES = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META", "GOOG", "BRK.B"]
ACTIONS = ["view", "search", "trade", "analyze", "alert", "watchlist_add"]


def _in_flight_consumer(redis_client, pids: set[int]) -> bool:
    """True when a consumer living in one of ``pids`` holds delivered-but-unacknowledged entries."""
    try:
        consumers = redis_client.xinfo_consumers(STREAM, GROUP)
    except Exception:
        return False
    for c in consumers:
        name = c["name"].decode() if isinstance(c["name"], bytes) else c["name"]
        if c["pending"] > 0 and int(name.rsplit(":", 1)[1]) in pids:
            return True
    return False


@pytest.mark.slow
def test_sigkill_worker_repeatedly_during_50k_run(engine, redis_client, database_url, redis_url):
    from shadowwatch import ShadowWatchSync

    sw = ShadowWatchSync(database_url, redis_url, make_license_key())
    users = [new_user() for _ in range(40)]
    rng = random.Random(3)
    env = dict(os.environ, INGEST_RECLAIM_IDLE_SECONDS="1", INGEST_BATCH_SIZE="500", INGEST_DRAIN_SECONDS="5")

    events = [{"user_id": users[i % len(users)], "entity_id": ENTITIES[i % 7 + (i // 7) % 2],
               "action": ACTIONS[i % len(ACTIONS)]} for i in range(N_EVENTS)]
    chunks = [events[i:i + 3125] for i in range(0, N_EVENTS, 3125)]  # 16 chunks: a kill after 6 to 12 of them
    produced = 0
    kills_mid_batch = held_mid_batch = kills = 0
    worker = WorkerProcess("ingest", env=env, name="ingest-victim").start()
    try:
        for k, chunk in enumerate(chunks):
            for i in range(0, len(chunk), 1000):
                sw.track_many(chunk[i:i + 1000])
            produced += len(chunk)
            if k >= 12 or (kills >= 6 and held_mid_batch >= 3):
                continue
            # Every other kill holds a lock the batch statement needs, so the victim is surely caught
            # between XREADGROUP and COMMIT (a loaded machine can finish every batch between two polls);
            # the others land at a random point: before, during or after COMMIT.
            held = k % 2 == 0
            blocker = engine.connect() if held else None
            if blocker is not None:
                blocker.begin()
                blocker.exec_driver_sql("LOCK TABLE ingest_interests IN SHARE MODE")
            try:
                deadline = time.monotonic() + (20 if held else 5)
                next_kick = 0.0
                while time.monotonic() < deadline and not _in_flight_consumer(redis_client, set(worker.pids())):
                    if time.monotonic() >= next_kick:  # keep kicking: another ingest worker may take some kicks
                        app.tasks["ingest.drain"].apply_async(expires=5)
                        next_kick = time.monotonic() + 0.2
                    time.sleep(0.005)
                time.sleep(rng.uniform(0, 0.012))  # vary the kill point inside a ~15 ms batch
                in_flight = _in_flight_consumer(redis_client, set(worker.pids()))
                kills_mid_batch += in_flight
                held_mid_batch += in_flight and held
                worker.kill()
                kills += 1
            finally:
                if blocker is not None:
                    blocker.rollback()
                    blocker.close()
            worker.stop()
            worker = WorkerProcess("ingest", env=env, name="ingest-victim").start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and count_events(engine, users) < N_EVENTS:
            app.tasks["ingest.drain"].apply_async(expires=5)
            time.sleep(0.5)
    finally:
        worker.stop()
        sw.close()
    assert produced == N_EVENTS
    assert held_mid_batch >= 3, (held_mid_batch, kills_mid_batch, kills)  # kills really hit batches in flight
    with engine.connect() as c:
        rows = c.execute(text("SELECT count(*), count(DISTINCT event_id) FROM ingest_events WHERE user_id = ANY(:u)"),
                         {"u": users}).one()
        interest_events = c.execute(text("SELECT sum(event_count) FROM ingest_interests WHERE user_id = ANY(:u)"),
                                    {"u": users}).scalar()
    assert tuple(rows) == (N_EVENTS, N_EVENTS)
    assert interest_events == N_EVENTS  # no batch was folded into interests twice


def _crash_and_restart(server: RedisServer) -> None:
    """SIGKILL Redis and start it again on the same port (clients keep their URL)."""
    from shared_models.embedded import _port_open

    port = server.port
    server.stop(sig=signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.02)
    server.start()
    assert server.port == port


@pytest.mark.slow
def test_redis_sigkill_restarts_lose_no_acknowledged_event(engine, database_url, tmp_path):
    from shadowwatch import ShadowWatchSync

    server = RedisServer(Path(tmp_path) / "redis", fsync="always").start()
    sw = ShadowWatchSync(database_url, server.url, make_license_key())
    user_ids = [new_user() for _ in range(5)]
    acked: list[str] = []
    refused = 0
    stop = threading.Event()
    marks: list[int] = []

    def produce():
        nonlocal refused
        i = 0
        while not stop.is_set():
            try:
                acked.append(sw.track(user_ids[i % 5], ENTITIES[i % 8], ACTIONS[i % 6]))
            except Exception:  # Redis down longer than the client's retry window: not acknowledged
                refused += 1
                time.sleep(0.01)
            i += 1

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        for _ in range(4):
            time.sleep(0.7)
            sw.drain_now(time_budget=0.3)  # leave some entries pending/unacked at the crash
            marks.append(len(acked))
            _crash_and_restart(server)
        time.sleep(0.5)
    finally:
        stop.set()
        producer.join()
    try:
        for _ in range(20):
            sw.drain_now(time_budget=10)
            if count_events(engine, user_ids) >= len(acked):
                break
            time.sleep(1.1)  # pending entries of the crashed consumer become reclaimable
        with engine.connect() as c:
            stored = set(map(str, c.execute(text("SELECT event_id FROM ingest_events WHERE user_id = ANY(:u)"),
                                            {"u": user_ids}).scalars()))
    finally:
        sw.close()
        server.stop()
    assert len(acked) > 200
    assert marks == sorted(set(marks)) and len(acked) > marks[-1]  # tracking resumed after every crash
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged events lost (refused during outage: {refused})"
