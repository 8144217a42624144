"""shadow pool tables: model registry, trades, evaluations, promotion history

Exactly one champion at any instant: a partial unique index (never two) plus a
deferred constraint trigger checked at COMMIT (never zero once there was one),
so a promotion can demote and promote inside one transaction.

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_CHECK_FN = """
CREATE FUNCTION shadow_check_one_champion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM shadow_models WHERE role = 'champion') <> 1
       AND EXISTS (SELECT 1 FROM shadow_models) THEN
        RAISE EXCEPTION 'shadow registry must have exactly one champion (transaction left %)',
            (SELECT count(*) FROM shadow_models WHERE role = 'champion')
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
"""

_TRIGGER = """
CREATE CONSTRAINT TRIGGER shadow_one_champion
AFTER UPDATE OF role OR DELETE ON shadow_models
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW WHEN (OLD.role = 'champion')
EXECUTE FUNCTION shadow_check_one_champion();
"""


def upgrade() -> None:
    op.create_table(
        "shadow_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("model_type", sa.String(50), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("parameters", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("allocation", sa.Float(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('champion', 'challenger', 'archived')",
                           name=op.f("ck_shadow_models_role_valid")),
        sa.CheckConstraint("allocation >= 0 AND allocation <= 1", name=op.f("ck_shadow_models_allocation_unit")),
        sa.CheckConstraint("role = 'champion' OR role = 'archived' OR allocation = 0",
                           name=op.f("ck_shadow_models_shadow_zero_alloc")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_models")),
        sa.UniqueConstraint("name", name=op.f("uq_shadow_models_name")),
    )
    op.create_index("uq_shadow_models_one_champion", "shadow_models", ["role"], unique=True,
                    postgresql_where=sa.text("role = 'champion'"))
    op.execute(_CHECK_FN)
    op.execute(_TRIGGER)

    op.create_table(
        "shadow_trades",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("trade_id", sa.String(100), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("return", sa.Float(), nullable=False),
        sa.Column("pnl", sa.Float(), nullable=False),
        sa.Column("shadow", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("closed_at >= opened_at", name=op.f("ck_shadow_trades_closed_after_opened")),
        sa.CheckConstraint('"return" > -1', name=op.f("ck_shadow_trades_return_gt_minus_one")),
        sa.ForeignKeyConstraint(["model_id"], ["shadow_models.id"], ondelete="CASCADE",
                                name=op.f("fk_shadow_trades_model_id_shadow_models")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_trades")),
        sa.UniqueConstraint("model_id", "trade_id", name=op.f("uq_shadow_trades_model_id_trade_id")),
    )
    op.create_index("ix_shadow_trades_model_closed", "shadow_trades", ["model_id", "closed_at", "id"])

    op.create_table(
        "shadow_evaluations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("challenger_id", sa.Integer(), nullable=False),
        sa.Column("champion_id", sa.Integer(), nullable=False),
        sa.Column("n_trades", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("metrics", postgresql.JSONB(), nullable=False),
        sa.Column("elapsed_ms", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("decision IN ('APPROVED', 'PENDING', 'REJECTED')",
                           name=op.f("ck_shadow_evaluations_decision_valid")),
        sa.ForeignKeyConstraint(["challenger_id"], ["shadow_models.id"], ondelete="CASCADE",
                                name=op.f("fk_shadow_evaluations_challenger_id_shadow_models")),
        sa.ForeignKeyConstraint(["champion_id"], ["shadow_models.id"], ondelete="CASCADE",
                                name=op.f("fk_shadow_evaluations_champion_id_shadow_models")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_evaluations")),
        sa.UniqueConstraint("challenger_id", "champion_id", "n_trades",
                            name=op.f("uq_shadow_evaluations_challenger_id_champion_id_n_trades")),
    )

    op.create_table(
        "shadow_promotions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("from_model_id", sa.Integer(), nullable=True),
        sa.Column("to_model_id", sa.Integer(), nullable=True),
        sa.Column("metrics", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("elapsed_ms", sa.Float(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("event IN ('promote', 'rollback', 'reject', 'manual')",
                           name=op.f("ck_shadow_promotions_event_valid")),
        sa.ForeignKeyConstraint(["from_model_id"], ["shadow_models.id"], ondelete="SET NULL",
                                name=op.f("fk_shadow_promotions_from_model_id_shadow_models")),
        sa.ForeignKeyConstraint(["to_model_id"], ["shadow_models.id"], ondelete="SET NULL",
                                name=op.f("fk_shadow_promotions_to_model_id_shadow_models")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_promotions")),
    )
    op.create_index("ix_shadow_promotions_created", "shadow_promotions", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_shadow_promotions_created", table_name="shadow_promotions")
    op.drop_table("shadow_promotions")
    op.drop_table("shadow_evaluations")
    op.drop_index("ix_shadow_trades_model_closed", table_name="shadow_trades")
    op.drop_table("shadow_trades")
    op.execute("DROP TRIGGER IF EXISTS shadow_one_champion ON shadow_models")
    op.execute("DROP FUNCTION IF EXISTS shadow_check_one_champion()")
    op.drop_index("uq_shadow_models_one_champion", table_name="shadow_models")
    op.drop_table("shadow_models")
