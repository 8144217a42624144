"""market_bar_corrections: a bar rewritten with other values keeps its old and new values

Every writer of ``market_bars`` (the live path, the price loader, anyone with SQL) upserts
with ``WHERE .. IS DISTINCT FROM``, so an identical re-send changes nothing; a bar that does
change is a correction. A statement trigger (transition tables: one INSERT per statement,
not per row) records each changed row with the writer's ``quantpipe.bar_source`` setting
(``SET LOCAL``; 'sql' when unset). SECURITY DEFINER: a writer needs no grant on the audit
table to be audited, and cannot skip it.

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TRIGGER = """
CREATE FUNCTION market_bars_record_corrections() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO market_bar_corrections (symbol, timeframe, ts, old_open, old_high, old_low, old_close,
        old_volume, old_adjusted, new_open, new_high, new_low, new_close, new_volume, new_adjusted, source)
    SELECT n.symbol, n.timeframe, n.ts, o.open, o.high, o.low, o.close, o.volume, o.adjusted,
           n.open, n.high, n.low, n.close, n.volume, n.adjusted,
           left(COALESCE(NULLIF(current_setting('quantpipe.bar_source', true), ''), 'sql'), 100)
    FROM old_rows o JOIN new_rows n USING (symbol, timeframe, ts)
    WHERE (o.open, o.high, o.low, o.close, o.volume, o.adjusted)
          IS DISTINCT FROM (n.open, n.high, n.low, n.close, n.volume, n.adjusted);
    RETURN NULL;
END;
$$;
CREATE TRIGGER trg_market_bars_corrections AFTER UPDATE ON market_bars
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION market_bars_record_corrections();
"""


def upgrade() -> None:
    op.create_table(
        "market_bar_corrections",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        *[sa.Column(f"{side}_{c}", sa.Float(), nullable=False)
          for side in ("old", "new") for c in ("open", "high", "low", "close", "volume")],
        sa.Column("old_adjusted", sa.Boolean(), nullable=False),
        sa.Column("new_adjusted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("corrected_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_bar_corrections")),
    )
    op.create_index("ix_market_bar_corrections_bar", "market_bar_corrections", ["symbol", "timeframe", "ts"])
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_market_bars_corrections ON market_bars")
    op.execute("DROP FUNCTION IF EXISTS market_bars_record_corrections()")
    op.drop_index("ix_market_bar_corrections_bar", table_name="market_bar_corrections")
    op.drop_table("market_bar_corrections")
