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


@pytest.mark.slow
def test_heartbeat_never_older_than_15s_while_beat_runs(workers, redis_client, tmp_path):
    redis_client.delete(HEARTBEAT_KEY)
    log = open(tmp_path / "beat.log", "wb")
    beat_proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers.app", "beat", "-s",
                                  str(tmp_path / "schedule"), "--loglevel", "INFO"], cwd=ROOT, env=os.environ.copy(),
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20  # first entry fires one period (10 s) after start
        while redis_client.get(HEARTBEAT_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.25)
        assert redis_client.get(HEARTBEAT_KEY) is not None, (tmp_path / "beat.log").read_text()[-2000:]
        ages = []
        end = time.monotonic() + 22  # two more periods
        while time.monotonic() < end:
            ages.append(heartbeat_age(redis_client))
            time.sleep(0.5)
        assert max(ages) <= 15, max(ages)
        assert min(ages) < 2  # it was refreshed while we watched
    finally:
        beat_proc.terminate()
        try:
            beat_proc.wait(10)
        except subprocess.TimeoutExpired:
            beat_proc.kill()
            beat_proc.wait()
        log.close()
