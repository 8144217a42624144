"""shadow trades carry the opportunity (signal) both models saw

``opportunity_id`` lets the evaluation pair a challenger's trade with the
champion's trade on the same opportunity and test the per-opportunity
differences (far more power for the same trades than comparing two independent
samples). Nullable: trades without it are compared unpaired, as before.

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("shadow_trades", sa.Column("opportunity_id", sa.String(100), nullable=True))
    op.create_index("ix_shadow_trades_model_opportunity", "shadow_trades", ["model_id", "opportunity_id"],
                    postgresql_where=sa.text("opportunity_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_shadow_trades_model_opportunity", table_name="shadow_trades")
    op.drop_column("shadow_trades", "opportunity_id")
