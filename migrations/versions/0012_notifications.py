"""notifications: subscriptions, alerts, the delivery outbox, attempts, personal pattern alerts

Two SECURITY DEFINER functions are the only way other pools touch these tables, so a
pool's role needs no grant on them (and never sees a subscription's secret):

- ``notify_alert(key, event, priority, title, data, only_subscription)``: the alert (unique
  by key: raising the same fact twice is one alert) and one outbox row per matching
  subscription, in the caller's transaction; returns the deliveries created (NULL for a
  duplicate).
- ``pattern_audience(rows, min_score, half_life_days)``: for a batch of new detections, the
  users whose library holds the symbol (decayed interest >= min_score, or pinned by a
  holding), written to ``user_pattern_alerts``; returns (flow_id, user_count) per detection.

Roles (cluster-wide, NOLOGIN, created only if missing): ``quantpipe_notifier`` may EXECUTE
both functions and is granted to the roles that raise alerts (discovery, api, notify);
``quantpipe_notify`` is the notify worker's (reads subscriptions and their secrets, works the
outbox, records attempts, keeps dead letters, reads dead letters and PRODUCER_ALIVE rows
for its watchdog). ``quantpipe_api`` manages subscriptions without reading secrets.

Revision ID: 0012
Revises: 0011
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

NOTIFY_ROLE = "quantpipe_notify"
NOTIFIER_ROLE = "quantpipe_notifier"
API_ROLE = "quantpipe_api"
APP_ROLE = "quantpipe_app"
RAISERS = ("quantpipe_discovery", API_ROLE, NOTIFY_ROLE)
TABLES = ("notification_subscriptions", "notification_alerts", "notification_deliveries", "notification_attempts",
          "user_pattern_alerts")
PRIORITIES = "ARRAY['low', 'medium', 'high', 'critical']"
SUB_PUBLIC = "id, name, target, format, events, min_priority, created_by, created_at, removed_at"

NOTIFY_ALERT = f"""
CREATE OR REPLACE FUNCTION notify_alert(p_key varchar, p_event varchar, p_priority varchar, p_title varchar,
                                        p_data jsonb, p_only_subscription bigint DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a_id bigint;
    n integer;
BEGIN
    INSERT INTO notification_alerts (alert_key, event, priority, title, data)
    VALUES (p_key, p_event, p_priority, left(p_title, 300), coalesce(p_data, '{{}}'::jsonb))
    ON CONFLICT (alert_key) DO NOTHING RETURNING id INTO a_id;
    IF a_id IS NULL THEN
        RETURN NULL;  -- the same fact was raised before: one alert, one delivery per subscription
    END IF;
    INSERT INTO notification_deliveries (alert_id, subscription_id)
    SELECT a_id, s.id FROM notification_subscriptions s
    WHERE s.removed_at IS NULL AND CASE
        WHEN p_only_subscription IS NOT NULL THEN s.id = p_only_subscription
        ELSE (p_event = ANY(s.events) OR '*' = ANY(s.events))
             AND array_position({PRIORITIES}, p_priority::text) >= array_position({PRIORITIES}, s.min_priority::text)
    END;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
"""

PATTERN_AUDIENCE = """
CREATE OR REPLACE FUNCTION pattern_audience(p_rows jsonb, p_min_score float8, p_half_life_days float8)
RETURNS TABLE (flow_id uuid, user_count integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH r AS (
        SELECT * FROM jsonb_to_recordset(p_rows) AS x(detection_id bigint, flow_id uuid, symbol varchar,
                                                      pattern varchar, tier varchar, confidence float8)
    ), syms AS (
        SELECT DISTINCT symbol FROM r
    ), who AS (
        SELECT symbol, user_id, max(score) AS score, bool_or(pinned) AS pinned FROM (
            SELECT i.entity_id AS symbol, i.user_id,
                   i.score * power(2.0, -extract(epoch FROM (now() - i.score_at)) / (p_half_life_days * 86400.0))
                       AS score, false AS pinned
            FROM ingest_interests i WHERE i.entity_id IN (SELECT symbol FROM syms)
            UNION ALL
            SELECT h.entity_id, h.user_id, NULL, true
            FROM ingest_holdings h WHERE h.entity_id IN (SELECT symbol FROM syms)
        ) lib GROUP BY symbol, user_id
        HAVING bool_or(pinned) OR max(score) >= p_min_score
    ), ins AS (
        INSERT INTO user_pattern_alerts (user_id, detection_id, flow_id, symbol, pattern, tier, confidence, reason,
                                         score)
        SELECT w.user_id, r.detection_id, r.flow_id, r.symbol, r.pattern, r.tier, r.confidence,
               CASE WHEN w.pinned THEN 'pinned' ELSE 'interest' END, w.score
        FROM r JOIN who w ON w.symbol = r.symbol
        ON CONFLICT ON CONSTRAINT uq_user_pattern_alerts_user_detection DO NOTHING
        RETURNING user_pattern_alerts.flow_id
    )
    SELECT r.flow_id, CAST(count(ins.flow_id) AS integer) FROM r LEFT JOIN ins ON ins.flow_id = r.flow_id
    GROUP BY r.flow_id;
END $$;
"""


def _create_role(name: str) -> None:
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently elsewhere
        END $$;""")


def _grant_membership(group: str, member: str) -> None:
    """Role membership is cluster-wide: grant once, tolerate a concurrent grant, never revoke on downgrade."""
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{member}')
               AND NOT pg_has_role('{member}', '{group}', 'MEMBER') THEN
                GRANT {group} TO {member};
            END IF;
        EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL;
        END $$;""")


def upgrade() -> None:
    op.create_table(
        "notification_subscriptions",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("target", sa.String(2000), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.String(40)), nullable=False),
        sa.Column("min_priority", sa.String(8), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("format IN ('json', 'slack', 'email')", name=op.f("ck_notification_subscriptions_format_known")),
        sa.CheckConstraint("min_priority IN ('low', 'medium', 'high', 'critical')",
                           name=op.f("ck_notification_subscriptions_min_priority_known")),
        sa.CheckConstraint("cardinality(events) > 0", name=op.f("ck_notification_subscriptions_events_nonempty")),
    )
    op.create_table(
        "notification_alerts",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("uid", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("alert_key", sa.String(200), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("data", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("uid", name=op.f("uq_notification_alerts_uid")),
        sa.UniqueConstraint("alert_key", name=op.f("uq_notification_alerts_alert_key")),
        sa.CheckConstraint("priority IN ('low', 'medium', 'high', 'critical')",
                           name=op.f("ck_notification_alerts_priority_known")),
    )
    op.create_index("ix_notification_alerts_created_at", "notification_alerts", ["created_at"])
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.BigInteger(), sa.ForeignKey("notification_alerts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("subscription_id", sa.BigInteger(),
                  sa.ForeignKey("notification_subscriptions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("idempotency_key", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("status", sa.String(12), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("lease_token", sa.Uuid()),
        sa.Column("last_status", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("alert_id", "subscription_id", name="uq_notification_deliveries_alert_subscription"),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_notification_deliveries_idempotency_key")),
        sa.CheckConstraint("status IN ('pending', 'sending', 'delivered', 'dead', 'cancelled')",
                           name=op.f("ck_notification_deliveries_status_known")),
    )
    op.create_index("ix_notification_deliveries_subscription_id", "notification_deliveries", ["subscription_id"])
    op.create_index("ix_notification_deliveries_due", "notification_deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text("status IN ('pending', 'sending')"))
    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.BigInteger(), sa.ForeignKey("notification_deliveries.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("http_status", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Float()),
        sa.UniqueConstraint("delivery_id", "attempt", name="uq_notification_attempts_delivery_attempt"),
    )
    op.create_table(
        "user_pattern_alerts",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(64, collation="C"), nullable=False),
        sa.Column("detection_id", sa.BigInteger(), nullable=False),
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.String(20), nullable=False),
        sa.Column("pattern", sa.String(50), nullable=False),
        sa.Column("tier", sa.String(10), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("user_id", "detection_id", name="uq_user_pattern_alerts_user_detection"),
        sa.CheckConstraint("reason IN ('pinned', 'interest')", name=op.f("ck_user_pattern_alerts_reason_known")),
    )
    op.create_index("ix_user_pattern_alerts_user_newest", "user_pattern_alerts",
                    ["user_id", sa.text("created_at DESC"), sa.text("id DESC")])
    op.create_index("ix_ingest_interests_entity_id", "ingest_interests", ["entity_id"])
    op.create_index("ix_ingest_holdings_entity_id", "ingest_holdings", ["entity_id"])
    op.execute(NOTIFY_ALERT)
    op.execute(PATTERN_AUDIENCE)
    _grants()


def _grants() -> None:
    for role in (NOTIFY_ROLE, NOTIFIER_ROLE, API_ROLE, APP_ROLE):
        _create_role(role)
    for fn in ("notify_alert(varchar, varchar, varchar, varchar, jsonb, bigint)",
               "pattern_audience(jsonb, float8, float8)"):
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {NOTIFIER_ROLE}")
    for member in RAISERS:
        _grant_membership(NOTIFIER_ROLE, member)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {NOTIFY_ROLE}")
    # the worker: reads subscriptions (with their secrets) and alerts, works the outbox, records attempts
    op.execute(f"GRANT SELECT ON notification_subscriptions, notification_alerts TO {NOTIFY_ROLE}")
    op.execute(f"GRANT SELECT, UPDATE ON notification_deliveries TO {NOTIFY_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON notification_attempts TO {NOTIFY_ROLE}")
    op.execute(f"GRANT USAGE ON SEQUENCE notification_attempts_id_seq, dead_letters_id_seq TO {NOTIFY_ROLE}")
    op.execute(f"GRANT SELECT, INSERT ON dead_letters TO {NOTIFY_ROLE}")          # keeps its own; counts bursts
    op.execute(f"GRANT SELECT ON integration_events, alembic_version TO {NOTIFY_ROLE}")  # PRODUCER_ALIVE rows
    # the API (and CLI through it): manage subscriptions, read histories, never read a secret
    op.execute(f"GRANT SELECT ({SUB_PUBLIC}) ON notification_subscriptions TO {API_ROLE}")
    op.execute(f"GRANT INSERT ({SUB_PUBLIC.replace('id, ', '', 1)}, secret_enc) ON notification_subscriptions "
               f"TO {API_ROLE}")
    op.execute(f"GRANT UPDATE (removed_at) ON notification_subscriptions TO {API_ROLE}")
    op.execute(f"GRANT USAGE ON SEQUENCE notification_subscriptions_id_seq TO {API_ROLE}")
    op.execute(f"GRANT SELECT ON notification_alerts, notification_attempts TO {API_ROLE}")
    op.execute(f"GRANT SELECT, UPDATE (status, next_attempt_at) ON notification_deliveries TO {API_ROLE}")
    # personal alerts: the main app reads them; erasure (DELETE /users/{id}) removes a user's
    op.execute(f"GRANT SELECT ON user_pattern_alerts TO {APP_ROLE}")
    op.execute(f"GRANT DELETE ON user_pattern_alerts TO {API_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS pattern_audience(jsonb, float8, float8)")
    op.execute("DROP FUNCTION IF EXISTS notify_alert(varchar, varchar, varchar, varchar, jsonb, bigint)")
    op.drop_index("ix_ingest_holdings_entity_id", table_name="ingest_holdings")
    op.drop_index("ix_ingest_interests_entity_id", table_name="ingest_interests")
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{NOTIFY_ROLE}') THEN
                REVOKE ALL ON dead_letters, integration_events, alembic_version FROM {NOTIFY_ROLE};
                REVOKE ALL ON SEQUENCE dead_letters_id_seq FROM {NOTIFY_ROLE};
                REVOKE ALL ON SCHEMA public FROM {NOTIFY_ROLE};
            END IF;
        END $$;""")
    for table in reversed(TABLES):
        op.drop_table(table)
    for role in (NOTIFY_ROLE, NOTIFIER_ROLE):
        op.execute(f"""
            DO $$ BEGIN
                IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
                    DROP ROLE {role};
                END IF;
            EXCEPTION WHEN dependent_objects_still_exist THEN
                RAISE NOTICE 'role % kept: still used by another database of this cluster', '{role}';
            END $$;""")
