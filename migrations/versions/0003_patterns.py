"""patterns pool: integration_events + log_integration_event() + pattern_flow_analysis (TickStock
contract), pattern_detections, pattern_outbox, backtest_jobs, pattern_scan_state,
pattern_bar_versions (+ statement triggers on market_bars) for the live path's window cache

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Exact signature of DESIGN §4. Latency = ms since the flow's first checkpoint;
# clock_timestamp() (not now()) so checkpoints in one transaction still get real times.
LOG_FUNCTION = """
CREATE OR REPLACE FUNCTION log_integration_event(
    p_flow_id uuid,
    p_event_type varchar(50),
    p_source varchar(50),
    p_checkpoint varchar(100),
    p_channel varchar(100) DEFAULT NULL,
    p_symbol varchar(20) DEFAULT NULL,
    p_pattern varchar(50) DEFAULT NULL,
    p_confidence decimal(3,2) DEFAULT NULL,
    p_user_count integer DEFAULT NULL,
    p_details jsonb DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_start timestamptz;
    v_id integer;
BEGIN
    IF p_flow_id IS NOT NULL THEN
        SELECT min(timestamp) INTO v_start FROM integration_events WHERE flow_id = p_flow_id;
    END IF;
    INSERT INTO integration_events (flow_id, timestamp, event_type, source_system, checkpoint, channel,
                                    symbol, pattern_name, confidence, user_count, details, latency_ms)
    VALUES (p_flow_id, v_now, p_event_type, p_source, p_checkpoint, p_channel, p_symbol, p_pattern,
            p_confidence, p_user_count, p_details,
            CASE WHEN v_start IS NULL THEN NULL
                 ELSE round((extract(epoch FROM (v_now - v_start)) * 1000)::numeric, 2) END)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$;
"""

# One row per flow; symbol/pattern taken from whichever checkpoint carried them, so a
# consumer row that omits them still joins its flow. Heartbeats are not flows.
FLOW_VIEW = """
CREATE VIEW pattern_flow_analysis AS
SELECT flow_id,
       CAST(max(symbol) AS varchar(20)) AS symbol,
       CAST(max(pattern_name) AS varchar(50)) AS pattern_name,
       min(timestamp) AS start_time,
       max(timestamp) AS end_time,
       round((extract(epoch FROM (max(timestamp) - min(timestamp))) * 1000)::numeric, 2) AS total_latency_ms,
       max(confidence) AS confidence,
       max(user_count) AS users_notified,
       count(*) AS checkpoints_logged,
       array_agg(checkpoint ORDER BY timestamp, id) AS flow_path
FROM integration_events
WHERE flow_id IS NOT NULL AND event_type <> 'heartbeat'
GROUP BY flow_id
"""


# Versions of each (symbol, timeframe)'s stored history, for the live path's in-worker window
# cache. Appending bars newer than every stored one leaves ``version`` alone (the cache reads
# just the new rows); any other change (an older bar inserted, a bar updated or deleted, a
# TRUNCATE) bumps it, so a cached window of that symbol is thrown away and re-read. Statement
# triggers with transition tables: one small upsert per statement, not per row.
BAR_VERSION_FUNCTIONS = """
CREATE FUNCTION pattern_bar_versions_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pattern_bar_versions AS v (symbol, timeframe, version, max_ts, last_min_ts)
    SELECT symbol, timeframe, 1, max(ts), min(ts) FROM changed_rows GROUP BY symbol, timeframe
    ORDER BY symbol, timeframe
    ON CONFLICT (symbol, timeframe) DO UPDATE SET
        version = v.version + CASE WHEN EXCLUDED.last_min_ts > v.max_ts THEN 0 ELSE 1 END,
        max_ts = GREATEST(v.max_ts, EXCLUDED.max_ts), last_min_ts = EXCLUDED.last_min_ts;
    RETURN NULL;
END;
$$;
CREATE FUNCTION pattern_bar_versions_on_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pattern_bar_versions AS v (symbol, timeframe, version, max_ts, last_min_ts)
    SELECT symbol, timeframe, 1, max(ts), min(ts) FROM changed_rows GROUP BY symbol, timeframe
    ORDER BY symbol, timeframe
    ON CONFLICT (symbol, timeframe) DO UPDATE SET version = v.version + 1,
        max_ts = GREATEST(v.max_ts, EXCLUDED.max_ts), last_min_ts = EXCLUDED.last_min_ts;
    RETURN NULL;
END;
$$;
-- DELETE also recomputes max_ts, so bars re-added after the deleted ones count as appends again.
CREATE FUNCTION pattern_bar_versions_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pattern_bar_versions v SET version = v.version + 1,
        max_ts = COALESCE((SELECT max(b.ts) FROM market_bars b WHERE b.symbol = v.symbol
                           AND b.timeframe = v.timeframe), '-infinity')
    FROM (SELECT DISTINCT symbol, timeframe FROM changed_rows ORDER BY symbol, timeframe) c
    WHERE v.symbol = c.symbol AND v.timeframe = c.timeframe;
    RETURN NULL;
END;
$$;
CREATE FUNCTION pattern_bar_versions_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pattern_bar_versions SET version = version + 1, max_ts = '-infinity';
    RETURN NULL;
END;
$$;
CREATE TRIGGER trg_market_bars_versions_ins AFTER INSERT ON market_bars
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION pattern_bar_versions_on_insert();
CREATE TRIGGER trg_market_bars_versions_upd_new AFTER UPDATE ON market_bars
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION pattern_bar_versions_on_change();
CREATE TRIGGER trg_market_bars_versions_upd_old AFTER UPDATE ON market_bars
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION pattern_bar_versions_on_change();
CREATE TRIGGER trg_market_bars_versions_del AFTER DELETE ON market_bars
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION pattern_bar_versions_on_delete();
CREATE TRIGGER trg_market_bars_versions_trunc AFTER TRUNCATE ON market_bars
    FOR EACH STATEMENT EXECUTE FUNCTION pattern_bar_versions_on_truncate();
INSERT INTO pattern_bar_versions (symbol, timeframe, version, max_ts, last_min_ts)
SELECT symbol, timeframe, 1, max(ts), min(ts) FROM market_bars GROUP BY symbol, timeframe;
"""


def upgrade() -> None:
    op.create_table(
        "integration_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flow_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("event_type", sa.String(50), nullable=False),
        sa.Column("source_system", sa.String(50), nullable=False),
        sa.Column("checkpoint", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(100), nullable=True),
        sa.Column("symbol", sa.String(20), nullable=True),
        sa.Column("pattern_name", sa.String(50), nullable=True),
        sa.Column("confidence", sa.Numeric(3, 2), nullable=True),
        sa.Column("user_count", sa.Integer(), nullable=True),
        sa.Column("details", postgresql.JSONB(), nullable=True),
        sa.Column("latency_ms", sa.Numeric(10, 2), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_events")),
    )
    op.create_index("idx_integration_events_flow_id", "integration_events", ["flow_id"])
    op.create_index("idx_integration_events_timestamp", "integration_events", [sa.text("timestamp DESC")])
    op.create_index("idx_integration_events_symbol", "integration_events", ["symbol"])
    op.create_index("idx_integration_events_pattern", "integration_events", ["pattern_name"])
    op.execute(LOG_FUNCTION)
    op.execute(FLOW_VIEW)

    op.create_table(
        "pattern_detections",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("pattern", sa.String(50), nullable=False),
        sa.Column("tier", sa.String(10), nullable=False),
        sa.Column("bar_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flow_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("current_price", sa.Float(), nullable=False),
        sa.Column("price_change", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.Column("indicators", postgresql.JSONB(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pattern_detections")),
        sa.UniqueConstraint("flow_id", name=op.f("uq_pattern_detections_flow_id")),
        sa.UniqueConstraint("symbol", "pattern", "tier", "bar_ts", name="uq_pattern_detections_key"),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 1", name=op.f("ck_pattern_detections_confidence")),
        sa.CheckConstraint("tier IN ('daily', 'intraday', 'combo')", name=op.f("ck_pattern_detections_tier")),
    )
    op.create_index("ix_pattern_detections_detected_at", "pattern_detections", ["detected_at"])
    op.create_index("ix_pattern_detections_symbol_bar_ts", "pattern_detections", ["symbol", "bar_ts"])

    op.create_table(
        "pattern_outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("detection_id", sa.BigInteger(), nullable=False),
        sa.Column("flow_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["detection_id"], ["pattern_detections.id"], ondelete="CASCADE",
                                name=op.f("fk_pattern_outbox_detection_id_pattern_detections")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pattern_outbox")),
        sa.UniqueConstraint("detection_id", name=op.f("uq_pattern_outbox_detection_id")),
        sa.UniqueConstraint("flow_id", name=op.f("uq_pattern_outbox_flow_id")),
    )
    op.create_index("ix_pattern_outbox_unsent", "pattern_outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"))

    op.create_table(
        "backtest_jobs",
        sa.Column("job_id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.String(100), nullable=True),
        sa.Column("request", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(20), server_default="queued", nullable=False),
        sa.Column("progress", sa.Float(), server_default="0", nullable=False),
        sa.Column("results", postgresql.JSONB(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_backtest_jobs")),
    )


    op.create_table(
        "pattern_scan_state",
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("tier", sa.String(10), nullable=False),
        sa.Column("last_bar_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "tier", name=op.f("pk_pattern_scan_state")),
    )

    op.create_table(
        "pattern_bar_versions",
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("max_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_min_ts", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("symbol", "timeframe", name=op.f("pk_pattern_bar_versions")),
    )
    op.execute(BAR_VERSION_FUNCTIONS)


def downgrade() -> None:
    for trigger in ("ins", "upd_new", "upd_old", "del", "trunc"):
        op.execute(f"DROP TRIGGER IF EXISTS trg_market_bars_versions_{trigger} ON market_bars")
    for fn in ("on_insert", "on_change", "on_delete", "on_truncate"):
        op.execute(f"DROP FUNCTION IF EXISTS pattern_bar_versions_{fn}()")
    op.drop_table("pattern_bar_versions")
    op.drop_table("pattern_scan_state")
    op.drop_table("backtest_jobs")
    op.drop_index("ix_pattern_outbox_unsent", table_name="pattern_outbox")
    op.drop_table("pattern_outbox")
    op.drop_index("ix_pattern_detections_symbol_bar_ts", table_name="pattern_detections")
    op.drop_index("ix_pattern_detections_detected_at", table_name="pattern_detections")
    op.drop_table("pattern_detections")
    op.execute("DROP VIEW IF EXISTS pattern_flow_analysis")
    op.execute("DROP FUNCTION IF EXISTS log_integration_event(uuid, varchar, varchar, varchar, varchar, varchar, "
                "varchar, decimal, integer, jsonb)")
    op.drop_index("idx_integration_events_pattern", table_name="integration_events")
    op.drop_index("idx_integration_events_symbol", table_name="integration_events")
    op.drop_index("idx_integration_events_timestamp", table_name="integration_events")
    op.drop_index("idx_integration_events_flow_id", table_name="integration_events")
    op.drop_table("integration_events")
