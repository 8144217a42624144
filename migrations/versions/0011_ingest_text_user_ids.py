"""ingest: user ids as text (string and UUID ids of apps, as the seed writes ``current_user.id``),
the seed's ``shadow_watch_activities`` view, login attempts indexed by network (credential stuffing)

The five per-user tables keep ``user_id`` as ``varchar(64) COLLATE "C"``: an integer id becomes
its decimal digits (so every stored id, cache key and erasure tombstone of an integer user stays
what it was: those already used ``str(user_id)``), a UUID its canonical form, any other id as
given. Collation "C" compares keys bytewise (no locale rules on the hot path's indexes).

``shadow_watch_activities`` is the table name seed 000's admin script queries
(``SELECT entity_id, COUNT(*) FROM shadow_watch_activities GROUP BY entity_id ...``): a view over
``ingest_events`` with the seed's column names.

``ix_ingest_login_attempts_network_created_at`` serves the trust signal "this network failed logins
for many other users in the last 30 minutes" (workers/ingestion/logins.py).

Downgrade turns the ids back into bigint and refuses (naming the count) while any id is not an
integer, rather than dropping those users' rows.

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = ("ingest_events", "ingest_interests", "ingest_holdings", "ingest_login_attempts", "ingest_known_signals")
VIEW = """
CREATE VIEW shadow_watch_activities AS
SELECT event_id AS id, user_id, entity_id, action, metadata, ts AS created_at, received_at
FROM ingest_events
"""
READERS = ("quantpipe_app", "quantpipe_api")


def _grant_view() -> None:
    for role in READERS:  # roles made by 0004/0007; a cluster may lack one if it was dropped by hand
        op.execute(f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
                   f"GRANT SELECT ON shadow_watch_activities TO {role}; END IF; END $$")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN user_id TYPE varchar(64) COLLATE "C" USING user_id::text')
    op.execute(VIEW)
    _grant_view()
    op.create_index("ix_ingest_login_attempts_network_created_at", "ingest_login_attempts", ["network", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_ingest_login_attempts_network_created_at", table_name="ingest_login_attempts")
    op.execute("DROP VIEW IF EXISTS shadow_watch_activities")
    checks = " UNION ALL ".join(f"SELECT user_id FROM {t} WHERE user_id !~ '^[0-9]{{1,19}}$'" for t in TABLES)
    op.execute(f"""
        DO $$ DECLARE n bigint; BEGIN
            SELECT count(DISTINCT user_id) INTO n FROM ({checks}) x;
            IF n > 0 THEN
                RAISE EXCEPTION 'downgrade 0011: % user id(s) are not integers; erase those users first', n;
            END IF;
        END $$""")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN user_id TYPE bigint USING user_id::bigint")
