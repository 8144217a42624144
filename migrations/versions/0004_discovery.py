"""discovery pool tables and least-privilege roles

Tables: politicians, trades (inputs); pattern_discoveries, anomaly_detections,
network_discoveries, model_experiments (outputs), each output with a natural-key
unique constraint so scans upsert.

Roles (cluster-wide, so created only if missing, NOLOGIN, no password in the repo):
- ``quantpipe_discovery``: reads politicians, trades, market_bars; writes only the
  four output tables (SELECT/INSERT/UPDATE: an upsert needs all three).
- ``quantpipe_app``: the main application; reads the outputs and politicians and
  may UPDATE only the ``investigated`` column of anomaly_detections.
An operator grants login with e.g. ``CREATE ROLE discovery_login LOGIN PASSWORD
'...' IN ROLE quantpipe_discovery`` (see docs/discovery.md).

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DISCOVERY_ROLE = "quantpipe_discovery"
APP_ROLE = "quantpipe_app"
INPUTS = ("politicians", "trades", "market_bars")
OUTPUTS = ("pattern_discoveries", "anomaly_detections", "network_discoveries", "model_experiments")


def _timestamps(*names: str) -> list[sa.Column]:
    return [sa.Column(n, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False) for n in names]


def _finding_columns(level: str) -> list[sa.Column]:
    return [
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column(level, sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("evidence", postgresql.JSONB(), nullable=False),
    ]


def _politician_fk(table: str) -> sa.Column:
    return sa.Column("politician_id", sa.BigInteger(),
                     sa.ForeignKey("politicians.id", ondelete="CASCADE",
                                   name=f"fk_{table}_politician_id_politicians"), nullable=False)


def _unit_checks(table: str, level: str) -> list[sa.CheckConstraint]:
    return [sa.CheckConstraint(f"{level} BETWEEN 0 AND 1", name=f"ck_{table}_{level}_unit"),
            sa.CheckConstraint("confidence BETWEEN 0 AND 1", name=f"ck_{table}_confidence_unit")]


def _create_tables() -> None:
    op.create_table(
        "politicians",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("chamber", sa.String(8), nullable=False),
        sa.Column("state", sa.String(2), nullable=True),
        sa.Column("district", sa.String(8), nullable=True),
        sa.Column("bioguide", sa.String(16), nullable=True),
        sa.Column("aliases", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        *_timestamps("created_at", "updated_at"),
        sa.CheckConstraint("chamber IN ('senate', 'house')", name="ck_politicians_chamber_known"),
        sa.UniqueConstraint("key", name="uq_politicians_key"),
    )
    op.create_table(
        "trades",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        _politician_fk("trades"),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.Column("ticker", sa.String(16)),
        sa.Column("asset_description", sa.Text()),
        sa.Column("asset_type", sa.String(64)),
        sa.Column("transaction_date", sa.Date(), nullable=False),
        sa.Column("disclosure_date", sa.Date()),
        sa.Column("disclosure_lag_days", sa.Integer()),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(16)),
        sa.Column("amount_min", sa.Float()),
        sa.Column("amount_max", sa.Float()),
        sa.Column("amount_raw", sa.String(64)),
        sa.Column("ptr_link", sa.Text()),
        sa.Column("comment", sa.Text()),
        *_timestamps("created_at"),
        sa.UniqueConstraint("source", "row_hash", name="uq_trades_source_row_hash"),
        sa.CheckConstraint("type IN ('purchase', 'sale_full', 'sale_partial', 'exchange')",
                           name="ck_trades_type_known"),
        sa.CheckConstraint("amount_max IS NULL OR amount_min IS NULL OR amount_max >= amount_min",
                           name="ck_trades_amount_range"),
    )
    op.create_index("ix_trades_politician_id", "trades", ["politician_id"])
    op.create_index("ix_trades_ticker_transaction_date", "trades", ["ticker", "transaction_date"])

    op.create_table(
        "pattern_discoveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        _politician_fk("pattern_discoveries"),
        *_finding_columns("strength"),
        *_timestamps("discovered_at", "updated_at"),
        sa.UniqueConstraint("politician_id", "kind", "subject", name="uq_pattern_discoveries_natural_key"),
        *_unit_checks("pattern_discoveries", "strength"),
    )
    op.create_index("ix_pattern_discoveries_politician_id", "pattern_discoveries", ["politician_id"])
    op.create_index("ix_pattern_discoveries_strength", "pattern_discoveries", ["strength"])

    op.create_table(
        "anomaly_detections",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        _politician_fk("anomaly_detections"),
        *_finding_columns("severity"),
        sa.Column("investigated", sa.Boolean(), nullable=False, server_default=sa.false()),
        *_timestamps("detected_at", "updated_at"),
        sa.UniqueConstraint("politician_id", "kind", "subject", name="uq_anomaly_detections_natural_key"),
        *_unit_checks("anomaly_detections", "severity"),
    )
    op.create_index("ix_anomaly_detections_politician_id", "anomaly_detections", ["politician_id"])
    op.create_index("ix_anomaly_detections_open", "anomaly_detections", ["severity"],
                    postgresql_where=sa.text("NOT investigated"))

    op.create_table(
        "network_discoveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("members", postgresql.JSONB(), nullable=False),
        *[c for c in _finding_columns("strength") if c.name not in ("kind", "subject")],
        *_timestamps("discovered_at", "updated_at"),
        sa.UniqueConstraint("kind", "subject", name="uq_network_discoveries_natural_key"),
        *_unit_checks("network_discoveries", "strength"),
    )
    op.create_table(
        "model_experiments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("parameters", postgresql.JSONB(), nullable=False),
        sa.Column("metrics", postgresql.JSONB(), nullable=False),
        sa.Column("deployment_ready", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        *_timestamps("ran_at", "updated_at"),
        sa.UniqueConstraint("name", "params_hash", name="uq_model_experiments_natural_key"),
    )


def _create_role(name: str) -> None:
    # Roles are per cluster: another database (or an earlier run) may have made it already.
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently elsewhere
        END $$;""")


def _grant_roles() -> None:
    for role in (DISCOVERY_ROLE, APP_ROLE):
        _create_role(role)
        op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(f"GRANT SELECT ON {', '.join(INPUTS)} TO {DISCOVERY_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON {', '.join(OUTPUTS)} TO {DISCOVERY_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON {', '.join(t + '_id_seq' for t in OUTPUTS)} TO {DISCOVERY_ROLE}")
    # bad input is kept, never dropped: the pool may append to dead_letters (and nothing else there)
    op.execute(f"GRANT INSERT ON dead_letters TO {DISCOVERY_ROLE}")
    op.execute(f"GRANT USAGE ON SEQUENCE dead_letters_id_seq TO {DISCOVERY_ROLE}")
    op.execute(f"GRANT SELECT ON politicians, {', '.join(OUTPUTS)} TO {APP_ROLE}")
    op.execute(f"GRANT UPDATE (investigated) ON anomaly_detections TO {APP_ROLE}")


def upgrade() -> None:
    _create_tables()
    _grant_roles()


def _drop_role(name: str) -> None:
    # Other databases of the cluster may still grant to the role: then it stays (and says why).
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{name}') THEN
                DROP ROLE {name};
            END IF;
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'role % kept: still used by another database of this cluster', '{name}';
        END $$;""")


def downgrade() -> None:
    for role in (DISCOVERY_ROLE, APP_ROLE):
        op.execute(f"""
            DO $$ BEGIN
                IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
                    REVOKE ALL ON {', '.join(INPUTS + OUTPUTS)}, dead_letters FROM {role};
                    REVOKE ALL ON SEQUENCE dead_letters_id_seq FROM {role};
                    REVOKE ALL ON SCHEMA public FROM {role};
                END IF;
            END $$;""")
    for table in ("model_experiments", "network_discoveries", "anomaly_detections", "pattern_discoveries",
                  "trades", "politicians"):
        op.drop_table(table)
    for role in (DISCOVERY_ROLE, APP_ROLE):
        _drop_role(role)
