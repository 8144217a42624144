"""The set-based PATTERN_PUBLISHED insert of ``PERSIST_SQL`` writes the rows ``log_integration_event()``
wrote when it was called once per row (issue #16 item 2): same columns, same latency rule."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from workers.patterns.detection import Detection
from workers.patterns.publisher import PERSIST_SQL, persist_params

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
