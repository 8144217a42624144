"""The demo consumer's set-based EVENT_RECEIVED insert (cli/demo/consumer.RECEIVED_SQL) writes the rows
``log_integration_event()`` writes when called once per flow (issue #13 item 4): same columns, same
latency rule (from the flow's first earlier checkpoint; NULL for a flow without one), except that
the timestamp is the receipt time the consumer passes, not the INSERT's clock."""

from __future__ import annotations

import time
import uuid

from cli.demo.consumer import RECEIVED_SQL

PER_FLOW = ("SELECT count(log_integration_event(CAST(f AS uuid), 'pattern_detected', 'TickStockAppV2', "
            "'EVENT_RECEIVED', 'tickstock.events.patterns', NULL, NULL, NULL, NULL, NULL)) "
            "FROM unnest(CAST(%(flows)s AS text[])) AS f")
SAME = ("event_type, source_system, checkpoint, channel, symbol, pattern_name, confidence, user_count, "
        "details, latency_ms IS NULL")
TIMES = ("extract(epoch FROM timestamp)::float8, latency_ms, "
         "(SELECT extract(epoch FROM min(p.timestamp))::float8 FROM integration_events p "
         " WHERE p.flow_id = e.flow_id AND p.checkpoint = 'PATTERN_PUBLISHED')")


def _received(engine, sql: str, at: list[float] | None = None) -> list[tuple]:
    """Three flows (two with a PATTERN_PUBLISHED checkpoint first), logged by ``sql`` in a rolled-back
    transaction: (same columns, times) of their EVENT_RECEIVED rows, in the flows' order."""
    flows = [str(uuid.uuid4()) for _ in range(3)]
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        for f in flows[:2]:
            cur.execute("SELECT log_integration_event(CAST(%(f)s AS uuid), 'pattern_detected', 'TickStockPL', "
                        "'PATTERN_PUBLISHED', 'tickstock.events.patterns', 'ZRCV', 'Doji', 0.5, 0, NULL)", {"f": f})
        cur.execute("SELECT pg_sleep(0.02)")
        cur.execute(sql, {"flows": flows, "at": at})
        rows = []
        for f in flows:
            cur.execute(f"SELECT {SAME}, {TIMES} FROM integration_events e WHERE flow_id = CAST(%(f)s AS uuid) "
                        "AND checkpoint = 'EVENT_RECEIVED'", {"f": f})
            rows.append(cur.fetchall())
        conn.rollback()
        return rows
    finally:
        conn.close()


def test_set_based_received_rows_equal_the_function_rows_at_the_receipt_time(engine):
    compiled = str(RECEIVED_SQL.compile(compile_kwargs={})).replace(":flows", "%(flows)s").replace(":at", "%(at)s")
    received = time.time() + 0.5  # later than the PATTERN_PUBLISHED rows, and than the INSERT itself
    at = [received, received + 0.25, received + 1.0]
    fast, slow = _received(engine, compiled, at), _received(engine, PER_FLOW)
    assert [len(r) for r in fast] == [1, 1, 1] == [len(r) for r in slow]
    same = len(SAME.split(", "))
    assert [r[0][:same] for r in fast] == [r[0][:same] for r in slow]
    for (row,), t in zip(fast, at):
        stamp, latency, start = row[same:]
        assert abs(stamp - t) < 1e-5  # the receipt time, to the microsecond
        if start is None:
            assert latency is None
        else:
            assert abs(float(latency) - (t - start) * 1000) <= 0.011  # ms to 2 places of µs timestamps
