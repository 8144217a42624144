"""The seed_names migration on data: integer politician ids become uuid5 of the key everywhere they are
referenced (trades, findings, network members and subjects), the seed's column names appear,
and the downgrade maps everything back."""

import hashlib
import json
import uuid

from sqlalchemy import text

from alembic.script import ScriptDirectory

from shared_models import migrate
from shared_models.models.discovery import politician_uuid

SCRIPT = next(r for r in ScriptDirectory.from_config(migrate.alembic_config("postgresql://x/y")).walk_revisions()
              if r.path.endswith("_seed_names.py"))

PEOPLE = [(1, "A000001", "Alice Example"), (2, "name:example|bob", "Bob Example"), (3, "C000003", "Carol Example")]


def _seed_before(conn) -> None:
    for pid, key, name in PEOPLE:
        conn.execute(text("INSERT INTO politicians (id, key, full_name, chamber) VALUES (:i, :k, :n, 'senate')"),
                     {"i": pid, "k": key, "n": name})
        conn.execute(text("INSERT INTO trades (politician_id, source, row_hash, transaction_date, type) "
                          "VALUES (:i, 'house', :h, '2020-01-02', 'purchase')"), {"i": pid, "h": f"h{pid}"})
        conn.execute(text("INSERT INTO pattern_discoveries (politician_id, kind, subject, strength, confidence, "
                          "parameters, description, evidence) VALUES (:i, 'fourier_cycle', 'trade_days', 0.9, 0.9, "
                          "'{}', 'd', '{}')"), {"i": pid})
        conn.execute(text("INSERT INTO anomaly_detections (politician_id, kind, subject, severity, confidence, "
                          "parameters, description, evidence, investigated) VALUES (:i, 'late_disclosure', 's', "
                          "0.9, 1, '{}', 'd', '{}', :inv)"), {"i": pid, "inv": pid == 2})
    digest = hashlib.sha1(b"1,2,3").hexdigest()[:16]
    for kind, subject, members, evidence in (
            ("co_trading_pair", "1-3", [1, 3], {"weight": 4}),
            ("co_trading_community", f"community:{digest}", [1, 2, 3],
             {"members": [1, 2, 3], "edges": [[1, 2, 3], [1, 3, 4]]})):
        conn.execute(text("INSERT INTO network_discoveries (kind, subject, members, strength, confidence, parameters, "
                          "description, evidence) VALUES (:k, :s, CAST(:m AS jsonb), 0.5, 0.99, '{}', 'd', "
                          "CAST(:e AS jsonb))"), {"k": kind, "s": subject, "m": json.dumps(members),
                                                   "e": json.dumps(evidence)})
    conn.execute(text("INSERT INTO model_experiments (name, params_hash, parameters, metrics, deployment_ready, "
                      "description) VALUES ('copy', 'h', '{}', '{}', false, 'd')"))


def test_upgrade_converts_ids_and_names_then_downgrade_restores(scratch_db):
    url, eng = scratch_db
    migrate.upgrade(url, SCRIPT.down_revision)
    with eng.begin() as c:
        _seed_before(c)
    migrate.upgrade(url, SCRIPT.revision)
    ids = {pid: str(politician_uuid(key)) for pid, key, _ in PEOPLE}
    with eng.connect() as c:
        assert dict(c.execute(text("SELECT key, id::text FROM politicians")).all()) == \
            {key: ids[pid] for pid, key, _ in PEOPLE}
        for table in ("trades", "pattern_discoveries", "anomaly_detections"):
            got = c.execute(text(f"SELECT p.key FROM {table} t JOIN politicians p ON p.id = t.politician_id "
                                 "ORDER BY 1")).scalars().all()
            assert got == sorted(k for _, k, _ in PEOPLE), table
        assert c.execute(text("SELECT p.full_name FROM anomaly_detections a JOIN politicians p "
                              "ON p.id = a.politician_id WHERE a.investigated")).scalar() == "Bob Example"
        net = {r.network_type: r for r in c.execute(text("SELECT network_type, subject, members, evidence "
                                                         "FROM network_discoveries"))}
        pair = sorted([ids[1], ids[3]])
        assert net["co_trading_pair"].members == pair and net["co_trading_pair"].subject == "-".join(pair)
        everyone = sorted(ids.values())
        community = net["co_trading_community"]
        assert community.members == everyone == community.evidence["members"]
        assert community.subject == "community:" + hashlib.sha1(",".join(everyone).encode()).hexdigest()[:16]
        assert community.evidence["edges"] == [[ids[1], ids[2], 3], [ids[1], ids[3], 4]]
        c.execute(text("SELECT pattern_type, discovery_date FROM pattern_discoveries")).all()
        c.execute(text("SELECT model_name, deployment_ready, experiment_date FROM model_experiments")).all()
        c.execute(text("SELECT anomaly_type, detection_date FROM anomaly_detections")).all()
    with eng.begin() as c:  # rows others insert get a random UUID; the natural keys still hold
        new = c.execute(text("INSERT INTO politicians (key, full_name, chamber) VALUES ('x', 'X', 'house') "
                             "RETURNING id")).scalar()
        assert isinstance(new, uuid.UUID) or uuid.UUID(str(new))
        c.execute(text("DELETE FROM politicians WHERE key = 'x'"))
    migrate.downgrade(url, SCRIPT.down_revision)
    with eng.connect() as c:
        assert c.execute(text("SELECT key, id FROM politicians ORDER BY key")).all() == \
            sorted((key, n) for n, (_, key, _) in enumerate(sorted(PEOPLE, key=lambda p: p[1]), start=1))
        net = {r.kind: r for r in c.execute(text("SELECT kind, subject, members FROM network_discoveries"))}
        assert sorted(net["co_trading_community"].members) == [1, 2, 3]
        assert c.execute(text("SELECT count(*) FROM trades t JOIN politicians p ON p.id = t.politician_id")).scalar() \
            == 3
        c.execute(text("SELECT kind, discovered_at FROM pattern_discoveries")).all()
        c.execute(text("SELECT name, ran_at FROM model_experiments")).all()
    with eng.begin() as c:  # the identity continues after the highest id
        assert c.execute(text("INSERT INTO politicians (key, full_name, chamber) VALUES ('y', 'Y', 'house') "
                              "RETURNING id")).scalar() == 4
    migrate.upgrade(url)
