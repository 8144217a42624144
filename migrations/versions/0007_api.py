"""HTTP API: hashed API keys and the API's least-privilege role

``api_keys`` keeps only a SHA-256 of each key (keys are 256-bit random, so a fast
hash is enough; nothing that could log in is stored) plus its public id, name,
scopes and lifecycle times.

Role ``quantpipe_api`` (cluster-wide, NOLOGIN, created only if missing): what the
API's requests run as. It inherits ``quantpipe_app`` (the main app's reads and the
``investigated`` flag) and holds exactly what the pools' public functions the API
calls need: shadow registry writes, the ingest client's login/erasure writes (erasure
also deletes the user's dead letters), reads of patterns and dead letters, and reading / touching its own keys. It cannot create
or revoke keys (the CLI does that as the owner).

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

API_ROLE = "quantpipe_api"
APP_ROLE = "quantpipe_app"
READ = ("politicians", "trades", "market_bars", "dead_letters", "integration_events", "pattern_detections",
        "pattern_outbox", "pattern_flow_analysis", "backtest_jobs")
SHADOW = ("shadow_models", "shadow_trades", "shadow_evaluations", "shadow_promotions")
INGEST = ("ingest_events", "ingest_interests", "ingest_holdings", "ingest_login_attempts", "ingest_known_signals",
          "ingest_erasures")


def _create_role(name: str) -> None:
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- created concurrently elsewhere
        END $$;""")


def _sequences(conn, tables: tuple[str, ...]) -> list[str]:
    rows = conn.execute(sa.text(
        "SELECT pg_get_serial_sequence(t, c.column_name) FROM unnest(CAST(:t AS text[])) AS t "
        "JOIN information_schema.columns c ON c.table_name = t AND c.table_schema = 'public' "
        "WHERE pg_get_serial_sequence(t, c.column_name) IS NOT NULL"), {"t": list(tables)}).scalars()
    return sorted(set(rows))


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(16)), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("key_id", name=op.f("uq_api_keys_key_id")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.CheckConstraint("scopes <@ ARRAY['read', 'track', 'admin']::varchar[] AND cardinality(scopes) > 0",
                           name=op.f("ck_api_keys_scopes_known")),
    )
    _create_role(API_ROLE)
    _create_role(APP_ROLE)
    op.execute(f"GRANT {APP_ROLE} TO {API_ROLE}")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {API_ROLE}")
    op.execute(f"GRANT SELECT ON api_keys, alembic_version TO {API_ROLE}")  # /health reports the revision
    op.execute(f"GRANT UPDATE (last_used_at) ON api_keys TO {API_ROLE}")
    op.execute(f"GRANT SELECT ON {', '.join(READ)} TO {API_ROLE}")
    # INSERT: bad input is kept; DELETE: erasure (DELETE /users/{id}) removes the user's ingest dead letters
    op.execute(f"GRANT INSERT, DELETE ON dead_letters TO {API_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON {', '.join(SHADOW)} TO {API_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(INGEST)} TO {API_ROLE}")
    seqs = _sequences(op.get_bind(), ("dead_letters",) + SHADOW + INGEST)
    if seqs:
        op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {', '.join(seqs)} TO {API_ROLE}")


def downgrade() -> None:
    seqs = _sequences(op.get_bind(), ("dead_letters",) + SHADOW + INGEST)
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{API_ROLE}') THEN
                REVOKE ALL ON {', '.join(READ + SHADOW + INGEST)}, api_keys, alembic_version FROM {API_ROLE};
                {f"REVOKE ALL ON SEQUENCE {', '.join(seqs)} FROM {API_ROLE};" if seqs else ""}
                REVOKE ALL ON SCHEMA public FROM {API_ROLE};
            END IF;
        END $$;""")
    op.drop_table("api_keys")
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{API_ROLE}') THEN
                DROP ROLE {API_ROLE};
            END IF;
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'role % kept: still used by another database of this cluster', '{API_ROLE}';
        END $$;""")
