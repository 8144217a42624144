"""Redis stops during a scan and comes back: every detection is published exactly once."""

import os

import pytest
import redis
from sqlalchemy import text

from tests.support import RedisServer, WorkerProcess
from tests.workers.patterns.helpers import check_event, collect, load_daily
from workers.patterns.publisher import CHANNEL, relay_outbox
from workers.patterns.scanning import scan_symbol

pytestmark = pytest.mark.slow
SYMBOLS = ("MSFT", "JPM", "XOM")
SINCE = "2021-03-15"


def _flows(engine):
    with engine.connect() as c:
        return set(c.execute(text("SELECT flow_id::text FROM pattern_detections WHERE symbol = ANY(:s) "
                                  "AND tier = 'daily' AND bar_ts > :since"),
                             {"s": list(SYMBOLS), "since": SINCE}).scalars())


def test_redis_outage_loses_nothing_and_duplicates_nothing(engine, tmp_path):
    import pandas as pd

    since = pd.Timestamp(SINCE, tz="UTC").to_pydatetime()
    load_daily(engine, *SYMBOLS)
    server = RedisServer(tmp_path / "redis").start()
    worker = None
    try:
        client = redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=2)
        relay_outbox(engine, client, limit=100_000)  # rows other tests left unsent (redis None) are not ours
        sub = client.pubsub(ignore_subscribe_messages=True)
        sub.subscribe(CHANNEL)
        first = scan_symbol(engine, client, SYMBOLS[0], "daily", since)
        received = collect(sub, first.published, timeout=10)
        assert first.new > 0 and first.published == first.new == len(received)

        server.stop()  # Redis goes away mid-scan: the other symbols still commit their detections
        during = [scan_symbol(engine, client, s, "daily", since) for s in SYMBOLS[1:]]
        held = sum(r.new for r in during)
        assert held > 0 and all(r.published == 0 and r.relay_error for r in during)
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM pattern_outbox o JOIN pattern_detections d "
                                  "ON d.id = o.detection_id WHERE o.sent_at IS NULL AND d.symbol = ANY(:s)"),
                             {"s": list(SYMBOLS[1:])}).scalar() == held
        with pytest.raises(redis.exceptions.ConnectionError):
            relay_outbox(engine, client)  # a relay during the outage fails and marks nothing

        server.start()
        client = redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=2)
        sub = client.pubsub(ignore_subscribe_messages=True)
        sub.subscribe(CHANNEL)
        # a real patterns worker attached to this Redis runs the relay task
        env = {**os.environ, "REDIS_URL": server.url}
        worker = WorkerProcess("patterns", env=env, name="patterns-outage").start(wait=False)
        from workers.app import app

        with app.connection_for_write(url=server.url) as conn:
            app.tasks["patterns.relay_outbox"].apply_async(connection=conn, queue="patterns")
        received += collect(sub, held, timeout=60)
        assert len(received) == first.new + held
        for ev in received:
            check_event(ev)
        ids = [ev["flow_id"] for ev in received]
        assert len(set(ids)) == len(ids), "an event was published twice"
        assert set(ids) == _flows(engine), "an event was lost"
        # a retry (or the beat relay) now finds nothing to publish
        assert relay_outbox(engine, client).published == 0
        assert collect(sub, None, timeout=1.0) == []
        sub.close()
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
