"""Beat keeps the producer heartbeat fresh; PRODUCER_ALIVE rows and health status are published."""

import json
import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from tests.support import ROOT
from workers.patterns.liveness import ALIVE_LOCK_KEY, HEALTH_CHANNEL, HEARTBEAT_KEY, beat, heartbeat_age


def test_beat_function_sets_key_publishes_health_and_throttles_alive_rows(engine, redis_client):
    redis_client.delete(ALIVE_LOCK_KEY)
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(HEALTH_CHANNEL)
    try:
        with engine.connect() as c:
            before = c.execute(text("SELECT count(*) FROM integration_events WHERE checkpoint = 'PRODUCER_ALIVE'")).scalar()
        first = beat(engine, redis_client, alive_seconds=60)
        second = beat(engine, redis_client, alive_seconds=60)
        assert first["alive_logged"] and not second["alive_logged"]
        assert heartbeat_age(redis_client) < 5
        msg = None
        deadline = time.monotonic() + 5
        while msg is None and time.monotonic() < deadline:
            m = sub.get_message(timeout=0.2)
            if m and m["type"] == "message":
                msg = json.loads(m["data"])
        assert set(msg) == {"status", "metrics", "timestamp"} and type(msg["timestamp"]) is float
        assert msg["status"] in ("healthy", "degraded") and isinstance(msg["metrics"]["patterns_detected"], int)
        with engine.connect() as c:
            rows = c.execute(text("SELECT event_type, source_system, details FROM integration_events "
                                  "WHERE checkpoint = 'PRODUCER_ALIVE' ORDER BY id")).all()
        assert len(rows) == before + 1
        etype, source, details = rows[-1]
        assert (etype, source) == ("heartbeat", "TickStockPL")
        assert {"patterns_detected", "uptime_seconds", "last_pattern_time"} <= set(details)
    finally:
        sub.close()


# daily files no other test scans: their full-history scans keep one worker process busy
LONG_SCAN = ("ADBE", "AMD", "AMGN", "AVGO", "BKNG", "CAT", "COST", "CRM", "DE", "GS", "HON", "IBM", "LMT", "LOW",
             "MCD", "MDT", "CL", "MS", "NEE", "CMCSA", "NKE", "EL", "PG", "QCOM", "SBUX", "TGT", "TXN", "UNH",
             "UNP", "UPS", "USB", "V", "VZ", "WFC")


@pytest.mark.slow
def test_heartbeat_stays_fresh_while_a_long_scan_keeps_the_only_process_busy(engine, tmp_path):
    """Issue #13 item 4: with one patterns process busy for longer than two heartbeat periods the
    heartbeat stays <= 15 s old. Beat runs too (on the old design it queued the heartbeat task
    behind the scans, where it expired: 29 s stale)."""
    import redis

    from loaders.prices import load_prices
    from tests.support import RedisServer, WorkerProcess
    from workers.routing import queue_depth

    load_prices(engine, [ROOT / "data/prices/daily" / f"{s}.csv.gz" for s in LONG_SCAN])
    server = RedisServer(tmp_path / "redis").start()
    env = {**os.environ, "REDIS_URL": server.url, "PATTERNS_WORKER_HEARTBEAT": "true",
           "PATTERNS_HEARTBEAT_SECONDS": "10"}
    client = redis.Redis.from_url(server.url)
    worker = WorkerProcess("patterns", concurrency=1, env=env, name="patterns-live",
                           log_path=tmp_path / "worker.log").start(wait=False)  # pings go to another Redis
    log = open(tmp_path / "beat.log", "wb")
    beat_proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers.app", "beat", "-s",
                                  str(tmp_path / "schedule"), "--loglevel", "INFO"], cwd=ROOT, env=env,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60  # the worker's first beat comes when it is ready
        while client.get(HEARTBEAT_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.25)
        assert client.get(HEARTBEAT_KEY) is not None, (tmp_path / "worker.log").read_text()[-2000:]
        from workers.app import app

        with app.connection_for_write(url=server.url) as conn:
            for s in LONG_SCAN * 3:  # full re-scans redo the work: busy for minutes, whatever the speed-ups
                app.send_task("patterns.scan_symbol", args=[s, "daily", None, False], queue="patterns",
                              connection=conn)
        ages, started = [], time.monotonic()
        while queue_depth(client, "patterns") > 0 and time.monotonic() - started < 35:
            ages.append(heartbeat_age(client))
            time.sleep(0.5)
        busy = time.monotonic() - started
        assert busy >= 25, f"the scans took only {busy:.0f} s: too short to prove anything"
        assert max(ages) <= 15, (max(ages), busy)
        assert min(ages) < 2  # it was refreshed while the only process was busy
    finally:
        beat_proc.terminate()
        try:
            beat_proc.wait(10)
        except subprocess.TimeoutExpired:
            beat_proc.kill()
            beat_proc.wait()
        log.close()
        worker.stop()
        server.stop()
