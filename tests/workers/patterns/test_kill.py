"""A patterns worker SIGKILLed mid-scan: the task is redelivered and every detection is published once."""

import os
import time

import pytest
from sqlalchemy import text

from loaders.prices import read_price_file
from tests.support import WorkerProcess
from tests.workers.patterns.helpers import ROOT, check_event, collect, load_daily
from workers.patterns.detection import detect_frame
from workers.patterns.publisher import CHANNEL

pytestmark = pytest.mark.slow
SYMBOL = "BA"
# short limits for this worker only (SOFT < HARD < VISIBILITY), so redelivery happens within the test
KILL_ENV = {"QUANTPIPE_TASK_SOFT_TIME_LIMIT": "6", "QUANTPIPE_TASK_TIME_LIMIT": "8",
            "QUANTPIPE_VISIBILITY_TIMEOUT": "10"}


def test_killed_scan_is_redelivered_and_publishes_each_detection_once(engine, redis_client, tmp_path):
    from celery import Celery

    load_daily(engine, SYMBOL)
    expected = len(detect_frame(SYMBOL, read_price_file(ROOT / f"data/prices/daily/{SYMBOL}.csv.gz").bars, "daily"))
    env = {**os.environ, **KILL_ENV}
    # a client with the same short visibility timeout, on a queue only these workers consume
    sender = Celery("kill-test", broker=os.environ["REDIS_URL"])
    sender.conf.broker_transport_options = {"visibility_timeout": 10}
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    first = WorkerProcess("patterns", env=env, name="patterns-kill1", log_path=tmp_path / "w1.log").start()
    try:
        sender.send_task("patterns.scan_symbol", args=[SYMBOL, "daily", None, False], queue="patterns")
        deadline = time.monotonic() + 30
        while b"scan_symbol" not in (tmp_path / "w1.log").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # inside the task: reading, detecting or persisting ~6,000 detections
        first.kill()
        killed_at = time.monotonic()
    finally:
        first.stop()
    # kombu restores unacked messages older than the visibility timeout when a worker starts
    # (later only every ~10th restore cycle), so start the replacement once they are visible.
    time.sleep(max(0.0, 10.5 - (time.monotonic() - killed_at)))
    second = WorkerProcess("patterns", env=env, name="patterns-kill2", log_path=tmp_path / "w2.log").start()
    try:
        received = collect(sub, expected, timeout=60)
    finally:
        second.stop()
        sub.close()
    ids = [e["flow_id"] for e in received]
    assert len(ids) == len(set(ids)), "an event was published twice"
    with engine.connect() as c:
        stored = set(c.execute(text("SELECT flow_id::text FROM pattern_detections WHERE symbol = :s AND tier = 'daily'"),
                               {"s": SYMBOL}).scalars())
        unsent = c.execute(text("SELECT count(*) FROM pattern_outbox o JOIN pattern_detections d ON d.id = o.detection_id "
                                "WHERE d.symbol = :s AND o.sent_at IS NULL"), {"s": SYMBOL}).scalar()
    assert len(stored) == expected and set(ids) == stored and unsent == 0
    for e in received[:50]:
        check_event(e)
