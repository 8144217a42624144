"""foundation: market bars and dead letters

Revision ID: 0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "market_bars",
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.Column("adjusted", sa.Boolean(), server_default="false", nullable=False),
        sa.CheckConstraint("high >= low", name=op.f("ck_market_bars_high_ge_low")),
        sa.CheckConstraint("volume >= 0", name=op.f("ck_market_bars_volume_nonneg")),
        sa.PrimaryKeyConstraint("symbol", "timeframe", "ts", name=op.f("pk_market_bars")),
    )
    op.create_index("ix_market_bars_timeframe_ts", "market_bars", ["timeframe", "ts"])
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("pool", sa.String(16), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("field", sa.String(100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index(op.f("ix_dead_letters_pool"), "dead_letters", ["pool"])


def downgrade() -> None:
    op.drop_index(op.f("ix_dead_letters_pool"), table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_index("ix_market_bars_timeframe_ts", table_name="market_bars")
    op.drop_table("market_bars")
