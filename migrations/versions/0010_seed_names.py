"""discovery outputs under seed 002's names; UUID politician ids

Seed 002's main app reads ``pattern_discoveries.pattern_type`` / ``discovery_date``,
``model_experiments.model_name`` / ``experiment_date`` and types politician ids as UUIDs.
So, in place (no data is lost):

- renames: ``kind`` -> ``pattern_type`` / ``anomaly_type`` / ``network_type``,
  ``discovered_at`` -> ``discovery_date``, ``detected_at`` -> ``detection_date``,
  ``model_experiments.name`` -> ``model_name``, ``ran_at`` -> ``experiment_date``;
- ``politicians.id`` becomes a UUID: uuid5 of the politician's natural key (the same
  person gets the same id in every database), ``gen_random_uuid()`` for rows others insert;
  ``trades`` / ``pattern_discoveries`` / ``anomaly_detections.politician_id`` follow, and
  network findings' ``members`` and pair/community ``subject`` are rewritten with the new ids;
- ``evidence`` defaults to ``{}`` (the seed writes discoveries without it); an index for
  ``ORDER BY discovery_date DESC``; ``quantpipe_app`` may read ``trades`` (the seed's main
  app reads both politicians and trades).

Downgrade maps back (integer ids numbered in key order) and restores the old names.

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

import hashlib
import json
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Frozen copy of shared_models.models.discovery.POLITICIAN_NAMESPACE.
POLITICIAN_NAMESPACE = uuid.UUID("5b0f7d3e-2f43-5c1e-9a57-6d0c9f1e4a21")
APP_ROLE = "quantpipe_app"
RENAMES = [("pattern_discoveries", "kind", "pattern_type"), ("pattern_discoveries", "discovered_at", "discovery_date"),
           ("anomaly_detections", "kind", "anomaly_type"), ("anomaly_detections", "detected_at", "detection_date"),
           ("network_discoveries", "kind", "network_type"), ("network_discoveries", "discovered_at", "discovery_date"),
           ("model_experiments", "name", "model_name"), ("model_experiments", "ran_at", "experiment_date")]
# child table -> the natural key that contains politician_id (dropped with the column, then rebuilt)
CHILDREN = {"trades": None,
            "pattern_discoveries": ("uq_pattern_discoveries_natural_key", "pattern_type"),
            "anomaly_detections": ("uq_anomaly_detections_natural_key", "anomaly_type")}


def _remap_politician_ids(pairs: list[tuple], old_sql: str, new_sql: str) -> None:
    """Give politicians the new ids ``pairs`` = [(old id, new id)] and move every reference onto them."""
    op.execute(f"ALTER TABLE politicians ADD COLUMN new_id {new_sql}")
    if pairs:
        op.get_bind().execute(
            sa.text(f"UPDATE politicians p SET new_id = v.n FROM unnest(CAST(:old AS {old_sql}[]), "
                    f"CAST(:new AS {new_sql}[])) AS v(o, n) WHERE p.id = v.o"),
            {"old": [str(o) for o, _ in pairs], "new": [str(n) for _, n in pairs]})
    for child in CHILDREN:
        op.execute(f"ALTER TABLE {child} ADD COLUMN new_politician_id {new_sql}")
        op.execute(f"UPDATE {child} c SET new_politician_id = p.new_id FROM politicians p "
                   f"WHERE p.id = c.politician_id")
        op.drop_column(child, "politician_id")  # drops its FK, index and the natural key with it
    op.drop_column("politicians", "id")  # drops pk_politicians
    op.alter_column("politicians", "new_id", new_column_name="id", nullable=False)
    op.create_primary_key("pk_politicians", "politicians", ["id"])
    for child, natural in CHILDREN.items():
        op.alter_column(child, "new_politician_id", new_column_name="politician_id", nullable=False)
        op.create_foreign_key(f"fk_{child}_politician_id_politicians", child, "politicians", ["politician_id"],
                              ["id"], ondelete="CASCADE")
        op.create_index(f"ix_{child}_politician_id", child, ["politician_id"])
        if natural:
            op.create_unique_constraint(natural[0], child, ["politician_id", natural[1], "subject"])


def _remap_network(mapping: dict[str, str], kind_column: str, order) -> None:
    """Rewrite members, pair subjects and community digests with the new ids."""
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, {kind_column}, members, evidence FROM network_discoveries")).all()
    for fid, kind, members, evidence in rows:
        new = sorted((mapping[str(m)] for m in members), key=order)
        if kind == "co_trading_pair":
            subject = "-".join(new)
        else:
            subject = "community:" + hashlib.sha1(",".join(new).encode()).hexdigest()[:16]
        evidence = dict(evidence or {})
        if "members" in evidence:
            evidence["members"] = [_json_id(mapping[str(m)]) for m in sorted(evidence["members"],
                                                                            key=lambda m: order(mapping[str(m)]))]
        if "edges" in evidence:
            evidence["edges"] = [[_json_id(mapping[str(a)]), _json_id(mapping[str(b)]), w]
                                 for a, b, w in evidence["edges"]]
        conn.execute(sa.text("UPDATE network_discoveries SET members = CAST(:m AS jsonb), subject = :s, "
                             "evidence = CAST(:e AS jsonb) WHERE id = :i"),
                     {"m": json.dumps([_json_id(m) for m in new]), "s": subject, "e": json.dumps(evidence),
                      "i": fid})


def _json_id(value: str):
    return int(value) if value.isdigit() else value


def upgrade() -> None:
    for table, old, new in RENAMES:
        op.alter_column(table, old, new_column_name=new)
    keys = op.get_bind().execute(sa.text("SELECT id, key FROM politicians")).all()
    pairs = [(old, uuid.uuid5(POLITICIAN_NAMESPACE, key)) for old, key in keys]
    _remap_politician_ids(pairs, "bigint", "uuid")
    op.alter_column("politicians", "id", server_default=sa.text("gen_random_uuid()"))
    _remap_network({str(o): str(n) for o, n in pairs}, "network_type", order=str)
    for table in ("pattern_discoveries", "anomaly_detections", "network_discoveries"):
        op.alter_column(table, "evidence", server_default=sa.text("'{}'::jsonb"))
    op.create_index("ix_pattern_discoveries_discovery_date", "pattern_discoveries", ["discovery_date"])
    op.execute(f"GRANT SELECT ON trades TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{APP_ROLE}') THEN
                REVOKE SELECT ON trades FROM {APP_ROLE};
            END IF;
        END $$;""")
    op.drop_index("ix_pattern_discoveries_discovery_date", "pattern_discoveries")
    for table in ("pattern_discoveries", "anomaly_detections", "network_discoveries"):
        op.alter_column(table, "evidence", server_default=None)
    # integer ids numbered in key order: what a fresh load under 0004 assigns
    pairs = op.get_bind().execute(sa.text("SELECT id, row_number() OVER (ORDER BY key) FROM politicians")).all()
    op.alter_column("politicians", "id", server_default=None)
    _remap_politician_ids(pairs, "uuid", "bigint")
    op.execute("ALTER TABLE politicians ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
    op.execute("SELECT setval(pg_get_serial_sequence('politicians', 'id'), coalesce(max(id), 0) + 1, false) "
               "FROM politicians")
    _remap_network({str(o): str(n) for o, n in pairs}, "network_type", order=int)
    for table, old, new in reversed(RENAMES):
        op.alter_column(table, new, new_column_name=old)
