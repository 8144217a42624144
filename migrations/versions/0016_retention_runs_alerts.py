"""retention of notification alerts and discovery scan runs: their pools may delete old ones

``notify.prune`` deletes alerts older than ``QUANTPIPE_RETAIN_NOTIFICATION_ALERTS_DAYS``
whose deliveries are all finished (their deliveries and attempts go by ON DELETE CASCADE,
which PostgreSQL runs as the tables' owner); ``discovery.prune`` deletes finished scan runs
older than ``QUANTPIPE_RETAIN_DISCOVERY_SCAN_RUNS_DAYS`` (their parts cascade). Without
this both grew forever (~1 run and ~531 parts a day; one alert per event).

Revision ID: 0016
Revises: 0015
"""
from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

GRANTS = {"quantpipe_notify": "notification_alerts", "quantpipe_discovery": "discovery_scan_runs"}


def _each_existing_role(statement: str) -> None:
    for role, table in GRANTS.items():
        op.execute(f"""
            DO $$ BEGIN
                IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
                    {statement.format(role=role, table=table)};
                END IF;
            END $$;""")


def upgrade() -> None:
    _each_existing_role("GRANT DELETE ON {table} TO {role}")


def downgrade() -> None:
    _each_existing_role("REVOKE DELETE ON {table} FROM {role}")
