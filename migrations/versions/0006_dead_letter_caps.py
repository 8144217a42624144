"""dead letters: capped payloads (size + SHA-256 of the whole), subject key, retention index

``shared_models.dead_letters`` keeps at most a prefix of a rejected input, its size and
its hash. The trigger is the backstop for rows written any other way (plain SQL): it
fills size and hash and caps the payload at 4096 characters, so no path keeps a 2 MB
garbage entry whole. ``subject_key`` says who an input is about (a keyed hash), so an
erasure can find dead letters whose payload was truncated. ``(pool, created_at)`` serves
each pool's retention task.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TRIGGER_CAP_CHARS = 4096

FILL_FUNCTION = f"""
CREATE FUNCTION dead_letters_fill_digest() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    whole text := NEW.payload::text;
BEGIN
    IF NEW.payload_sha256 IS NULL THEN
        NEW.payload_bytes := octet_length(whole);
        NEW.payload_sha256 := encode(sha256(convert_to(whole, 'UTF8')), 'hex');
        IF length(whole) > {TRIGGER_CAP_CHARS} THEN
            NEW.payload := to_jsonb(left(whole, {TRIGGER_CAP_CHARS}));
            NEW.payload_truncated := true;
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trg_dead_letters_fill_digest BEFORE INSERT ON dead_letters
FOR EACH ROW EXECUTE FUNCTION dead_letters_fill_digest();
"""


def upgrade() -> None:
    op.add_column("dead_letters", sa.Column("payload_bytes", sa.BigInteger(), nullable=True))
    op.add_column("dead_letters", sa.Column("payload_sha256", sa.String(64), nullable=True))
    op.add_column("dead_letters", sa.Column("payload_truncated", sa.Boolean(), server_default="false",
                                            nullable=False))
    op.add_column("dead_letters", sa.Column("subject_key", sa.String(64), nullable=True))
    # rows kept before this revision: measure them, then cap the ones that are too big
    op.execute("UPDATE dead_letters SET payload_bytes = octet_length(payload::text), "
               "payload_sha256 = encode(sha256(convert_to(payload::text, 'UTF8')), 'hex')")
    op.execute(f"UPDATE dead_letters SET payload = to_jsonb(left(payload::text, {TRIGGER_CAP_CHARS})), "
               f"payload_truncated = true WHERE length(payload::text) > {TRIGGER_CAP_CHARS}")
    op.alter_column("dead_letters", "payload_bytes", nullable=False)
    op.alter_column("dead_letters", "payload_sha256", nullable=False)
    op.execute(FILL_FUNCTION)
    op.drop_index("ix_dead_letters_pool", table_name="dead_letters")
    op.create_index("ix_dead_letters_pool_created_at", "dead_letters", ["pool", "created_at"])
    op.create_index("ix_dead_letters_subject_key", "dead_letters", ["subject_key"],
                    postgresql_where=sa.text("subject_key IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_dead_letters_subject_key", table_name="dead_letters")
    op.drop_index("ix_dead_letters_pool_created_at", table_name="dead_letters")
    op.create_index("ix_dead_letters_pool", "dead_letters", ["pool"])
    op.execute("DROP TRIGGER IF EXISTS trg_dead_letters_fill_digest ON dead_letters")
    op.execute("DROP FUNCTION IF EXISTS dead_letters_fill_digest()")
    for column in ("subject_key", "payload_truncated", "payload_sha256", "payload_bytes"):
        op.drop_column("dead_letters", column)
