"""The demo consumer's set-based EVENT_RECEIVED insert (cli/demo/sources.RECEIVED_SQL) writes the rows
``log_integration_event()`` writes when called once per flow (issue #13 item 4): same columns, same
latency rule (from the flow's first earlier checkpoint; NULL for a flow without one)."""

from __future__ import annotations

import uuid

from cli.demo.sources import RECEIVED_SQL

PER_FLOW = ("SELECT count(log_integration_event(CAST(f AS uuid), 'pattern_detected', 'TickStockAppV2', "
            "'EVENT_RECEIVED', 'tickstock.events.patterns', NULL, NULL, NULL, NULL, NULL)) "
            "FROM unnest(CAST(%(flows)s AS text[])) AS f")
COLUMNS = ("event_type, source_system, checkpoint, channel, symbol, pattern_name, confidence, user_count, "
           "details, latency_ms IS NULL, latency_ms >= 0, timestamp > transaction_timestamp()")


def _received(engine, sql: str) -> list[tuple]:
    """Three flows (two with a PATTERN_PUBLISHED checkpoint first), logged by ``sql`` in a rolled-back
    transaction: their EVENT_RECEIVED rows, in the flows' order."""
    flows = [str(uuid.uuid4()) for _ in range(3)]
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        for f in flows[:2]:
            cur.execute("SELECT log_integration_event(CAST(%(f)s AS uuid), 'pattern_detected', 'TickStockPL', "
                        "'PATTERN_PUBLISHED', 'tickstock.events.patterns', 'ZRCV', 'Doji', 0.5, 0, NULL)", {"f": f})
        cur.execute("SELECT pg_sleep(0.01)")
        cur.execute(sql, {"flows": flows})
        rows = []
        for f in flows:
            cur.execute(f"SELECT {COLUMNS} FROM integration_events WHERE flow_id = CAST(%(f)s AS uuid) "
                        "AND checkpoint = 'EVENT_RECEIVED'", {"f": f})
            rows.append(cur.fetchall())
        conn.rollback()
        return rows
    finally:
        conn.close()


def test_set_based_received_rows_equal_the_function_rows(engine):
    compiled = str(RECEIVED_SQL.compile(compile_kwargs={})).replace(":flows", "%(flows)s")
    fast, slow = _received(engine, compiled), _received(engine, PER_FLOW)
    assert fast == slow
    assert [len(r) for r in fast] == [1, 1, 1]
    assert [r[0][-3:] for r in fast] == [(False, True, True), (False, True, True), (True, None, True)]
