"""Issue #15 item 1: ``data.timestamp`` is the epoch of the bar that completed the pattern.

A consumer stores detections under ``symbol:pattern:int(data.timestamp)``: a daily scan of five
symbols must not collapse onto five timestamps; a republished detection keeps its time; the
top-level ``timestamp`` stays the publish time; the bar's timeframe is in the event.
"""

import time

import pandas as pd
from sqlalchemy import text

from tests.workers.patterns.helpers import check_event, collect, load_daily
from workers.patterns.publisher import CHANNEL, PUBLISHED_KEY, relay_outbox
from workers.patterns.scanning import scan_symbol

SYMBOLS = ("HD", "MRK", "WMT", "CSCO", "ORCL")  # scanned by no other test
SINCE = pd.Timestamp("2021-01-01", tz="UTC").to_pydatetime()


def test_each_event_carries_its_bars_time_and_a_republish_keeps_it(engine, redis_client):
    load_daily(engine, *SYMBOLS)
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(CHANNEL)
    try:
        published_from = time.time()
        n = sum(scan_symbol(engine, redis_client, s, "daily", SINCE, incremental=False).published for s in SYMBOLS)
        events = collect(sub, n, timeout=30)
        assert n > 100 and len(events) == n
        with engine.connect() as c:
            bar_of = {str(f): ts.timestamp() for f, ts in c.execute(text(
                "SELECT flow_id, bar_ts FROM pattern_detections WHERE symbol = ANY(:s) AND tier = 'daily' "
                "AND bar_ts > :d"), {"s": list(SYMBOLS), "d": SINCE})}
            stored = dict(c.execute(text("SELECT flow_id::text, payload FROM pattern_outbox "
                                         "WHERE flow_id = ANY(CAST(:f AS uuid[]))"),
                                    {"f": [e["flow_id"] for e in events]}).all())
        for ev in events:
            check_event(ev)
            assert ev["data"] == stored[ev["flow_id"]]["data"]  # published from memory = what the outbox keeps
            assert ev["data"]["timestamp"] == bar_of[ev["flow_id"]]
            assert ev["data"]["timeframe"] == "1d"
            assert ev["timestamp"] >= published_from  # the top level is the publish time
        keys = {f"{e['data']['symbol']}:{e['data']['pattern']}:{int(e['data']['timestamp'])}" for e in events}
        assert len(keys) == len(events), "two detections of different bars share a consumer key"
        assert len({e["data"]["timestamp"] for e in events}) > 50  # one per bar, not one per scan

        # a lost "sent" mark alone republishes nothing: Redis keeps a marker per published flow
        some = [e["flow_id"] for e in events[:20]]
        unsend = "UPDATE pattern_outbox SET sent_at = NULL WHERE flow_id = ANY(CAST(:f AS uuid[]))"
        with engine.begin() as c:
            c.execute(text(unsend), {"f": some})
        relay_outbox(engine, redis_client, symbols=SYMBOLS)  # only ours: other tests leave unsent rows
        assert not [e for e in collect(sub, None, timeout=1) if e["flow_id"] in set(some)]
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM pattern_outbox WHERE sent_at IS NULL "
                                  "AND flow_id = ANY(CAST(:f AS uuid[]))"), {"f": some}).scalar() == 0
        # republish (mark and marker both lost, e.g. a Redis restore): the same bar time, a newer publish time
        with engine.begin() as c:
            c.execute(text(unsend), {"f": some})
        redis_client.delete(*[PUBLISHED_KEY + f for f in some])
        time.sleep(0.05)
        relayed = relay_outbox(engine, redis_client, symbols=SYMBOLS).published
        assert relayed >= len(some)
        again = {e["flow_id"]: e for e in collect(sub, relayed, timeout=10) if e["flow_id"] in set(some)}
        first = {e["flow_id"]: e for e in events}
        assert set(again) == set(some)
        for f, e in again.items():
            assert e["data"] == first[f]["data"] and e["timestamp"] > first[f]["timestamp"]
    finally:
        sub.close()
