"""ingest pool tables: raw events, decayed interests, holdings, login attempts, known signals, erasures

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# score·2^(−seconds/half_life) without float underflow errors: far-decayed scores are 0.
DECAY = """
CREATE OR REPLACE FUNCTION ingest_decay(score float8, seconds float8, half_life float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN seconds <= 0 THEN score
                WHEN abs(score) < 1e-30 OR seconds / half_life > 900 THEN 0::float8
                ELSE score * power(2::float8, -seconds / half_life) END
$$;
"""


def _ts(name: str, nullable: bool = False, **kw) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, **kw)


def upgrade() -> None:
    op.create_table(
        "ingest_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("entity_id", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        _ts("ts"),
        sa.Column("metadata", postgresql.JSONB(), nullable=False),
        _ts("received_at", server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_ingest_events")),
    )
    op.create_index("ix_ingest_events_user_id_ts", "ingest_events", ["user_id", "ts"])
    # BRIN: event time grows with insertion order, so a tiny BRIN index serves the retention
    # DELETE at a fraction of a B-tree's write cost on the hot insert path.
    op.create_index("ix_ingest_events_ts", "ingest_events", ["ts"], postgresql_using="brin")
    op.create_table(
        "ingest_interests",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("entity_id", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        _ts("score_at"),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("action_counts", postgresql.JSONB(), nullable=False),
        _ts("first_seen"),
        _ts("last_seen"),
        sa.PrimaryKeyConstraint("user_id", "entity_id", name=op.f("pk_ingest_interests")),
    )
    op.create_table(
        "ingest_holdings",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("entity_id", sa.String(32), nullable=False),
        _ts("updated_at", server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("user_id", "entity_id", name=op.f("pk_ingest_holdings")),
    )
    op.create_table(
        "ingest_login_attempts",
        sa.Column("attempt_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        _ts("created_at", server_default=sa.func.now()),
        sa.Column("ip_hmac", sa.String(64), nullable=True),
        sa.Column("network", sa.String(64), nullable=True),
        sa.Column("device_hash", sa.String(64), nullable=True),
        sa.Column("ua_family", sa.String(32), nullable=True),
        sa.Column("ua_os", sa.String(32), nullable=True),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=True),
        sa.Column("trust_score", sa.Float(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=True),
        _ts("confirmed_at", nullable=True),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_ingest_login_attempts")),
    )
    op.create_index("ix_ingest_login_attempts_user_id_created_at", "ingest_login_attempts",
                    ["user_id", "created_at"])
    op.create_table(
        "ingest_known_signals",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        _ts("first_seen"),
        _ts("last_seen"),
        sa.PrimaryKeyConstraint("user_id", "kind", "value", name=op.f("pk_ingest_known_signals")),
    )
    # Right-to-erasure tombstones: drains skip events of a user with ts <= erased_at (see store.py).
    op.create_table(
        "ingest_erasures",
        sa.Column("user_key", sa.String(32), nullable=False),  # keyed hash of the user id
        _ts("erased_at"),
        sa.PrimaryKeyConstraint("user_key", name=op.f("pk_ingest_erasures")),
    )
    op.execute(DECAY)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS ingest_decay(float8, float8, float8)")
    op.execute("DROP FUNCTION IF EXISTS ingest_merge_counts(jsonb, jsonb)")  # in databases migrated earlier
    op.drop_table("ingest_erasures")
    op.drop_table("ingest_known_signals")
    op.drop_index("ix_ingest_login_attempts_user_id_created_at", table_name="ingest_login_attempts")
    op.drop_table("ingest_login_attempts")
    op.drop_table("ingest_holdings")
    op.drop_table("ingest_interests")
    op.drop_index("ix_ingest_events_ts", table_name="ingest_events")
    op.drop_index("ix_ingest_events_user_id_ts", table_name="ingest_events")
    op.drop_table("ingest_events")
