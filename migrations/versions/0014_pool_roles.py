"""one least-privilege role per pool: ingest, patterns, shadow (discovery and notify had theirs)

Each pool's workers connect as their role (``shared_models.roles``), so a worker can do
exactly its tasks' writes and nothing else: the ingest role cannot touch a shadow model,
the patterns role cannot rewrite an interest, no pool role can drop or alter a table.
Roles are cluster-wide and NOLOGIN here; the embedded server gives them LOGIN after
migrating (trust on its private socket), production with ``quantpipe db logins``.

- ``quantpipe_ingest``: raw events (insert; delete for INGEST_RETENTION_DAYS), interests
  (upsert), reads tombstones, deletes expired login attempts.
- ``quantpipe_patterns``: bars (upsert; the version triggers run as the caller, the
  corrections trigger is SECURITY DEFINER), scan watermarks, detections, the outbox,
  backtest jobs, flow checkpoints (``log_integration_event``), ``pattern_audience`` through
  ``quantpipe_notifier``; deletes for retention (expired detections, sent outbox rows, old
  checkpoints).
- ``quantpipe_shadow``: reads/updates models (roles, allocation), records trades,
  evaluations and promotions, raises alerts through ``quantpipe_notifier``; deletes old
  evaluations of archived challengers.
- every pool role keeps dead letters and deletes its own old ones (retention); discovery
  and notify get that DELETE here, notify also DELETE on finished deliveries' attempts.
  Row-level security on ``dead_letters`` keeps that DELETE to the role's own pool's rows
  (``quantpipe_api`` may delete any: erasure removes a user's letters of every pool); the
  owner bypasses it, every role still reads and inserts as before.

Revision ID: 0014
Revises: 0013
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

NOTIFIER_ROLE = "quantpipe_notifier"
GRANTS = {
    "quantpipe_ingest": {
        "ingest_events": "SELECT, INSERT, DELETE",
        "ingest_interests": "SELECT, INSERT, UPDATE",
        "ingest_erasures": "SELECT",
        "ingest_login_attempts": "SELECT, DELETE",
    },
    "quantpipe_patterns": {
        "market_bars": "SELECT, INSERT, UPDATE",
        "pattern_bar_versions": "SELECT, INSERT, UPDATE",
        "pattern_scan_state": "SELECT, INSERT, UPDATE",
        "pattern_detections": "SELECT, INSERT, DELETE",
        "pattern_outbox": "SELECT, INSERT, UPDATE, DELETE",
        "backtest_jobs": "SELECT, INSERT, UPDATE",
        "integration_events": "SELECT, INSERT, DELETE",
    },
    "quantpipe_shadow": {
        "shadow_models": "SELECT, UPDATE",
        "shadow_trades": "SELECT, INSERT",
        "shadow_evaluations": "SELECT, INSERT, DELETE",
        "shadow_promotions": "SELECT, INSERT",
    },
}
NEW_ROLES = tuple(GRANTS)
RAISERS = ("quantpipe_patterns", "quantpipe_shadow")   # pattern_audience / notify_alert callers
# retention grants added to the roles of migrations 0004 and 0012
EXTRA = {"quantpipe_discovery": {"dead_letters": "SELECT, DELETE"},
         "quantpipe_notify": {"dead_letters": "DELETE", "notification_attempts": "DELETE"}}


POOLS = ("ingest", "patterns", "discovery", "shadow", "notify")
POLICIES = {
    "dead_letters_read": "FOR SELECT USING (true)",
    "dead_letters_keep": "FOR INSERT WITH CHECK (true)",
    # CASE, not AND: pg_has_role() must never see a role name that does not exist
    "dead_letters_prune_own": "FOR DELETE USING (pg_has_role(current_user, 'quantpipe_api', 'USAGE') OR CASE WHEN "
                              f"pool IN ({', '.join(repr(p) for p in POOLS)}) THEN pg_has_role(current_user, "
                              "'quantpipe_' || pool, 'USAGE') ELSE false END)",
}


def _create_role(name: str) -> None:
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently elsewhere
        END $$;""")


def _grant_membership(group: str, member: str) -> None:
    op.execute(f"""
        DO $$ BEGIN
            IF NOT pg_has_role('{member}', '{group}', 'MEMBER') THEN
                GRANT {group} TO {member};
            END IF;
        EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL;
        END $$;""")


def _sequences(tables) -> list[str]:
    rows = op.get_bind().execute(sa.text(
        "SELECT pg_get_serial_sequence(t, c.column_name) FROM unnest(CAST(:t AS text[])) AS t "
        "JOIN information_schema.columns c ON c.table_name = t AND c.table_schema = 'public' "
        "WHERE pg_get_serial_sequence(t, c.column_name) IS NOT NULL"), {"t": list(tables)}).scalars()
    return sorted(set(rows))


def upgrade() -> None:
    for role, tables in GRANTS.items():
        _create_role(role)
        op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        for table, privileges in tables.items():
            op.execute(f"GRANT {privileges} ON {table} TO {role}")
        op.execute(f"GRANT SELECT, INSERT, DELETE ON dead_letters TO {role}")
        seqs = _sequences([t for t, p in tables.items() if "INSERT" in p] + ["dead_letters"])
        op.execute(f"GRANT USAGE ON SEQUENCE {', '.join(seqs)} TO {role}")
    for member in RAISERS:
        _grant_membership(NOTIFIER_ROLE, member)
    for role, tables in EXTRA.items():
        for table, privileges in tables.items():
            op.execute(f"GRANT {privileges} ON {table} TO {role}")
    for name, policy in POLICIES.items():
        op.execute(f"CREATE POLICY {name} ON dead_letters {policy}")
    op.execute("ALTER TABLE dead_letters ENABLE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.execute("ALTER TABLE dead_letters DISABLE ROW LEVEL SECURITY")
    for name in POLICIES:
        op.execute(f"DROP POLICY IF EXISTS {name} ON dead_letters")
    for role, tables in EXTRA.items():
        for table, privileges in tables.items():
            op.execute(f"REVOKE {privileges} ON {table} FROM {role}")
    for role, tables in GRANTS.items():
        seqs = _sequences(list(tables) + ["dead_letters"])
        op.execute(f"""
            DO $$ BEGIN
                IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
                    REVOKE ALL ON {', '.join(tables)}, dead_letters FROM {role};
                    REVOKE ALL ON SEQUENCE {', '.join(seqs)} FROM {role};
                    REVOKE ALL ON SCHEMA public FROM {role};
                END IF;
            END $$;""")
        op.execute(f"""
            DO $$ BEGIN
                IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
                    DROP ROLE {role};
                END IF;
            EXCEPTION WHEN dependent_objects_still_exist THEN
                RAISE NOTICE 'role % kept: still used by another database of this cluster', '{role}';
            END $$;""")
