"""Migration 0003 creates the TickStock contract objects and goes down cleanly."""

import uuid

from sqlalchemy import inspect, text

from shared_models import migrate


def test_log_function_signature_and_flow_view(engine):
    with engine.connect() as c:
        args = c.execute(text("SELECT pg_get_function_identity_arguments('log_integration_event'::regproc)")).scalar()
        assert args == ("p_flow_id uuid, p_event_type character varying, p_source character varying, "
                        "p_checkpoint character varying, p_channel character varying, p_symbol character varying, "
                        "p_pattern character varying, p_confidence numeric, p_user_count integer, p_details jsonb")
        cols = {r[0]: r[1] for r in c.execute(text(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'pattern_flow_analysis'"))}
        assert cols == {"flow_id": "uuid", "symbol": "character varying", "pattern_name": "character varying",
                        "start_time": "timestamp with time zone", "end_time": "timestamp with time zone",
                        "total_latency_ms": "numeric", "confidence": "numeric", "users_notified": "integer",
                        "checkpoints_logged": "bigint", "flow_path": "ARRAY"}
        idx = {i["name"] for i in inspect(c).get_indexes("integration_events")}
        assert {"idx_integration_events_flow_id", "idx_integration_events_timestamp",
                "idx_integration_events_symbol", "idx_integration_events_pattern"} <= idx


def test_consumer_checkpoints_join_the_flow(engine):
    flow = str(uuid.uuid4())
    with engine.begin() as c:
        c.execute(text("SELECT log_integration_event(CAST(:f AS uuid), 'pattern_detected', 'TickStockPL', "
                       "'PATTERN_PUBLISHED', 'tickstock.events.patterns', 'ZZTEST', 'Doji', 0.81, NULL, NULL)"),
                  {"f": flow})
    with engine.begin() as c:  # the consumer logs without repeating the symbol/pattern
        for cp, users in (("EVENT_RECEIVED", None), ("EVENT_PARSED", None), ("WEBSOCKET_DELIVERED", 3)):
            c.execute(text("SELECT log_integration_event(CAST(:f AS uuid), 'pattern_detected', 'TickStockAppV2', "
                           ":cp, NULL, NULL, NULL, NULL, :u, NULL)"), {"f": flow, "cp": cp, "u": users})
    with engine.connect() as c:
        row = c.execute(text("SELECT symbol, pattern_name, confidence, users_notified, checkpoints_logged, "
                             "flow_path, total_latency_ms FROM pattern_flow_analysis WHERE flow_id = :f"),
                        {"f": flow}).one()
        lat = c.execute(text("SELECT latency_ms FROM integration_events WHERE flow_id = :f ORDER BY id"),
                        {"f": flow}).scalars().all()
    assert row[:6] == ("ZZTEST", "Doji", row[2], 3, 4,
                       ["PATTERN_PUBLISHED", "EVENT_RECEIVED", "EVENT_PARSED", "WEBSOCKET_DELIVERED"])
    assert float(row[2]) == 0.81 and row[6] >= 0
    assert lat[0] is None and all(x is not None and x >= 0 for x in lat[1:])


def test_patterns_migration_down_and_up(scratch_db):
    target, eng = scratch_db
    migrate.upgrade(target, "0003")
    mine = {"integration_events", "pattern_detections", "pattern_outbox", "backtest_jobs", "pattern_scan_state"}
    assert mine <= set(inspect(eng).get_table_names())
    migrate.downgrade(target, "0002")
    assert not mine & set(inspect(eng).get_table_names())
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM pg_proc WHERE proname = 'log_integration_event'")).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM pg_views WHERE viewname = 'pattern_flow_analysis'")).scalar() == 0
    migrate.upgrade(target, "0003")
    assert mine <= set(inspect(eng).get_table_names())


def test_flow_view_lists_only_flows_that_began_with_pattern_published(engine):
    """Issue #15 item 2: a consumer's own flows (e.g. subscription rows) are not pattern flows."""
    ours, theirs, late = (str(uuid.uuid4()) for _ in range(3))
    log = ("SELECT log_integration_event(CAST(:f AS uuid), :et, :src, :cp, NULL, :sym, NULL, NULL, NULL, NULL)")
    with engine.begin() as c:
        c.execute(text(log), {"f": ours, "et": "pattern_detected", "src": "TickStockPL", "cp": "PATTERN_PUBLISHED",
                              "sym": "ZZFLOW"})
        c.execute(text(log), {"f": theirs, "et": "subscription", "src": "TickStockAppV2",
                              "cp": "SUBSCRIPTION_CREATED", "sym": "ZZFLOW"})
        c.execute(text(log), {"f": late, "et": "pattern_detected", "src": "TickStockAppV2", "cp": "EVENT_RECEIVED",
                              "sym": "ZZFLOW"})
    with engine.begin() as c:
        c.execute(text(log), {"f": ours, "et": "pattern_detected", "src": "TickStockAppV2", "cp": "EVENT_RECEIVED",
                              "sym": None})
        # a PATTERN_PUBLISHED logged after another checkpoint does not make that flow ours
        c.execute(text(log), {"f": late, "et": "pattern_detected", "src": "TickStockPL", "cp": "PATTERN_PUBLISHED",
                              "sym": "ZZFLOW"})
    with engine.connect() as c:
        listed = {str(f): p for f, p in c.execute(text(
            "SELECT flow_id, flow_path FROM pattern_flow_analysis WHERE flow_id = ANY(CAST(:f AS uuid[]))"),
            {"f": [ours, theirs, late]})}
    assert listed == {ours: ["PATTERN_PUBLISHED", "EVENT_RECEIVED"]}
