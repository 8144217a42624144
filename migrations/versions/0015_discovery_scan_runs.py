"""discovery scan runs: a full scan recorded in PostgreSQL, so a lost message cannot stall it

``discovery_scan_runs`` (one row per ``scan all``) and ``discovery_scan_parts`` (one row per
politician of the run; ``done_at`` set in the same transaction as that politician's
findings). The last part to finish claims the network step (``network_sent_at``, under the
run's row lock); ``discovery.reconcile`` re-sends what a lost message left undone
(docs/discovery.md, failure model). ``quantpipe_discovery`` writes both tables;
``quantpipe_app`` may read them (scan progress).

Revision ID: 0015
Revises: 0014
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

GRANTS = {"quantpipe_discovery": "SELECT, INSERT, UPDATE", "quantpipe_app": "SELECT"}
TABLES = ("discovery_scan_runs", "discovery_scan_parts")


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "discovery_scan_runs",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("started_at", ts, server_default=sa.func.now(), nullable=False),
        sa.Column("politicians", sa.Integer(), nullable=False),
        sa.Column("reconciled_at", ts),
        sa.Column("network_sent_at", ts),
        sa.Column("network_done_at", ts),
        sa.Column("summary", postgresql.JSONB()),
        sa.CheckConstraint("politicians >= 0", name="ck_discovery_scan_runs_politicians_nonnegative"),
    )
    op.create_index("ix_discovery_scan_runs_open", "discovery_scan_runs", ["started_at"],
                    postgresql_where=sa.text("network_done_at IS NULL"))
    op.create_table(
        "discovery_scan_parts",
        sa.Column("run_id", postgresql.UUID(as_uuid=True),
                  sa.ForeignKey("discovery_scan_runs.id", ondelete="CASCADE",
                                name="fk_discovery_scan_parts_run_id_discovery_scan_runs"), primary_key=True),
        sa.Column("politician_id", postgresql.UUID(as_uuid=True),
                  sa.ForeignKey("politicians.id", ondelete="CASCADE",
                                name="fk_discovery_scan_parts_politician_id_politicians"), primary_key=True),
        sa.Column("done_at", ts),
        sa.Column("written", sa.Integer()),
        sa.Column("error", sa.Text()),
    )
    for role, privileges in GRANTS.items():
        op.execute(f"""
            DO $$ BEGIN
                IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
                    GRANT {privileges} ON {', '.join(TABLES)} TO {role};
                END IF;
            END $$;""")


def downgrade() -> None:
    op.drop_table("discovery_scan_parts")
    op.drop_index("ix_discovery_scan_runs_open", table_name="discovery_scan_runs")
    op.drop_table("discovery_scan_runs")
