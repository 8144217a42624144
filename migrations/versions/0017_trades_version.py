"""table_versions: an exact version of ``trades``, so a discovery scan's cache check is one index lookup

``workers.discovery.scan`` caches each ticker's share of all trades per process and used to
check it with ``count(*), max(id) FROM trades`` on every politician scan: a sequential scan
of the whole table, and not even exact (an UPDATE of a ticker kept both). The scan's first
statement took 3.1 ms a politician on 22,754 trades (0.7 s a full scan of 224), now 0.3 ms. Now statement triggers on ``trades`` (INSERT, UPDATE, DELETE,
TRUNCATE; cascaded deletes from ``politicians`` included) give its row of ``table_versions``
a new version whenever a statement changed a row, and the scan reads that row.

- A version is a fresh ``nextval`` of ``table_versions_version_seq``, not ``version + 1``: a
  value is never handed out twice, so no later state can show an earlier state's version (not
  after the row was deleted by hand, not after a TRUNCATE .. RESTART IDENTITY). The row, not
  the sequence, is what readers see: it is transactional, so an uncommitted or rolled-back
  write never shows a version.
- Transition tables: a statement that changed no row (a re-load whose INSERT .. ON CONFLICT
  DO NOTHING inserted nothing) leaves the version alone.
- SECURITY DEFINER: whoever may write ``trades`` (today the owner: the congress loader)
  bumps the version without any grant on ``table_versions``, and cannot forge one.
- ``quantpipe_discovery`` reads ``table_versions`` and ``pattern_bar_versions`` (migration
  0003: (version, max_ts) of the benchmark's daily bars is as exact for its cache: appends
  move max_ts, every other change bumps version).

Revision ID: 0017
Revises: 0016
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

DISCOVERY_ROLE = "quantpipe_discovery"
READS = ("table_versions", "pattern_bar_versions")
EVENTS = {"ins": ("INSERT", "NEW"), "upd": ("UPDATE", "NEW"), "del": ("DELETE", "OLD")}

FUNCTION = """
CREATE FUNCTION table_versions_bump() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'TRUNCATE' THEN
        IF NOT EXISTS (SELECT FROM changed_rows) THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO table_versions AS v (table_name, version) VALUES (TG_TABLE_NAME, nextval('table_versions_version_seq'))
    ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version;
    RETURN NULL;
END;
$$;
"""


def _for_discovery(statement: str) -> None:
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{DISCOVERY_ROLE}') THEN
                {statement};
            END IF;
        END $$;""")


def upgrade() -> None:
    op.create_table(
        "table_versions",
        sa.Column("table_name", sa.String(63), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name=op.f("pk_table_versions")),
    )
    op.execute("CREATE SEQUENCE table_versions_version_seq")
    op.execute("INSERT INTO table_versions (table_name, version) VALUES ('trades', nextval('table_versions_version_seq'))")
    op.execute(FUNCTION)
    for suffix, (event, side) in EVENTS.items():
        op.execute(f"CREATE TRIGGER trg_trades_version_{suffix} AFTER {event} ON trades "
                   f"REFERENCING {side} TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION table_versions_bump()")
    op.execute("CREATE TRIGGER trg_trades_version_trunc AFTER TRUNCATE ON trades "
               "FOR EACH STATEMENT EXECUTE FUNCTION table_versions_bump()")
    _for_discovery(f"GRANT SELECT ON {', '.join(READS)} TO {DISCOVERY_ROLE}")


def downgrade() -> None:
    _for_discovery(f"REVOKE SELECT ON {', '.join(READS)} FROM {DISCOVERY_ROLE}")
    for suffix in (*EVENTS, "trunc"):
        op.execute(f"DROP TRIGGER IF EXISTS trg_trades_version_{suffix} ON trades")
    op.execute("DROP FUNCTION IF EXISTS table_versions_bump()")
    op.drop_table("table_versions")
    op.execute("DROP SEQUENCE IF EXISTS table_versions_version_seq")
