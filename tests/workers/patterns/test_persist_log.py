"""The set-based PATTERN_PUBLISHED insert of ``PERSIST_SQL`` writes the rows ``log_integration_event()``
wrote when it was called once per row (issue #16 item 2): same columns, same latency rule."""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np

from workers.patterns.detection import Detection
from workers.patterns.publisher import PERSIST_SQL, build_event, dumps, persist_params

# The statement's checkpoint as it was: log_integration_event() once per new detection.
PER_ROW_LOG = """
SELECT d.id, d.flow_id::text, d.symbol, d.pattern,
       log_integration_event(d.flow_id, 'pattern_detected', 'TickStockPL', 'PATTERN_PUBLISHED', %(channel)s,
                             d.symbol, d.pattern, CAST(round(CAST(d.confidence AS numeric), 2) AS decimal(3,2)),
                             coalesce(a.user_count, 0), jsonb_build_object('tier', d.tier, 'bar_time',
                             extract(epoch FROM d.bar_ts), 'detection_id', d.id)),
       coalesce(a.user_count, 0)
FROM d LEFT JOIN a ON a.flow_id = d.flow_id
"""
COLUMNS = ("flow_id::text, event_type, source_system, checkpoint, channel, symbol, pattern_name, confidence, "
           "user_count, details - 'detection_id', latency_ms IS NULL, latency_ms >= 0")


def _per_row_sql() -> str:
    head, tail = PERSIST_SQL.split("), f AS (", 1)
    assert "INSERT INTO integration_events" in tail
    return head + ")\n" + PER_ROW_LOG


def _detections(symbol: str) -> list[Detection]:
    bar = datetime(2034, 2, 1, tzinfo=timezone.utc) + timedelta(days=uuid.uuid4().int % 3000)
    return [Detection(symbol, p, "daily", bar + timedelta(days=i), c, 10.5 + i, 1.25, 1000.0 + i, d,
                      {"talib_value": 100.0 * d, "relative_volume": 1.3})
            for i, (p, c, d) in enumerate((("Doji", 0.555, 0), ("Hammer", 0.75, 1), ("Gap_Down", 0.61, -1)))]


def _write(engine, sql: str, params: dict, earlier_flow: str) -> list[tuple]:
    """Run ``sql`` in a transaction that is rolled back; the checkpoint rows it wrote."""
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        # one flow already has a checkpoint (a consumer's, say): its latency must be counted from it
        cur.execute("SELECT log_integration_event(CAST(%(f)s AS uuid), 'pattern_detected', 'TickStockAppV2', "
                    "'EVENT_RECEIVED', NULL, NULL, NULL, NULL, NULL, NULL)", {"f": earlier_flow})
        cur.execute(sql, params)
        returned = cur.fetchall()
        flows = [r[1] for r in returned]
        cur.execute(f"SELECT {COLUMNS} FROM integration_events WHERE flow_id = ANY(CAST(%(f)s AS uuid[])) "
                    "AND checkpoint = 'PATTERN_PUBLISHED' ORDER BY flow_id", {"f": flows})
        rows = cur.fetchall()
        cur.execute("SELECT count(*) FROM integration_events WHERE flow_id = ANY(CAST(%(f)s AS uuid[])) "
                    "AND checkpoint = 'PATTERN_PUBLISHED' AND details->>'detection_id' = "
                    "(SELECT id::text FROM pattern_detections WHERE flow_id = integration_events.flow_id)",
                    {"f": flows})
        linked = cur.fetchone()[0]
        conn.rollback()
        return sorted((r[1], r[2], r[3], r[5]) for r in returned), rows, linked
    finally:
        conn.close()


def test_set_based_checkpoints_equal_the_function_rows(engine):
    dets = _detections(f"ZP{uuid.uuid4().hex[:4].upper()}")
    params = persist_params(dets, 24.0)
    import json

    earlier = json.loads(params["rows"])[1]["flow_id"]
    fast_ret, fast_rows, fast_linked = _write(engine, PERSIST_SQL, params, earlier)
    slow_ret, slow_rows, slow_linked = _write(engine, _per_row_sql(), params, earlier)
    assert len(fast_rows) == len(dets) == fast_linked == slow_linked
    assert fast_rows == slow_rows
    assert fast_ret == slow_ret  # same detections returned, same user counts
    by_flow = {r[0]: r for r in fast_rows}
    assert by_flow[earlier][-2:] == (False, True)  # latency counted from the earlier checkpoint
    assert sum(1 for r in fast_rows if r[-2]) == len(dets) - 1  # fresh flows: no latency


def _reference_params(detections, ttl_hours: float, now: float) -> tuple[bytes, dict]:
    """persist_params' rows and events as first written: a uuid4 and a build_event per distinct key."""
    rows, events, seen = [], {}, set()
    for d in detections:
        key = (d.symbol, d.pattern, d.tier, d.bar_ts)
        if key in seen:
            continue
        seen.add(key)
        fid = str(uuid.uuid4())
        event = events[fid] = build_event(d, fid, now, ttl_hours)
        rows.append({"symbol": d.symbol, "pattern": d.pattern, "tier": d.tier, "bar_ts": d.bar_ts.isoformat(),
                     "flow_id": fid, "confidence": event["data"]["confidence"],
                     "current_price": float(d.current_price), "price_change": float(d.price_change),
                     "volume": float(d.volume), "indicators": d.indicators, "payload": event})
    return dumps(rows), events


def test_persist_params_rows_and_events_are_byte_identical_to_one_uuid4_and_build_event_each(monkeypatch):
    """The tick's fast path (one urandom call for the flow ids, ISO text and epoch once per bar) writes
    the same JSON as per-detection uuid4() + build_event(), given the same random bytes; duplicates,
    a bar in another UTC offset (an equal datetime, other ISO text) and numpy numbers included."""
    tz = timezone(timedelta(hours=-5))
    base = _detections("ZPBYTE")
    dets = (base + base[:1] + [replace(d, symbol="ZPTZ", bar_ts=d.bar_ts.astimezone(tz)) for d in base]
            + [replace(base[1], symbol="ZPNP", confidence=np.float64(0.615), current_price=np.float32(10.25),
                       volume=np.int64(7))])
    now = 1_900_000_000.25
    for seed in (1, 2):
        rng = random.Random(seed)
        monkeypatch.setattr(os, "urandom", rng.randbytes)
        events = {}
        params = persist_params(dets, 36.0, now, events)
        rng.seed(seed)
        want_rows, want_events = _reference_params(dets, 36.0, now)
        assert params["rows"].encode() == want_rows
        assert list(events) == list(want_events) and dumps(list(events.values())) == dumps(list(want_events.values()))
        assert len(events) == len(dets) - 1 and all(uuid.UUID(f).version == 4 for f in events)
