"""Least privilege used: each pool's real worker works as its own role and cannot write what it must not.

The session's workers (tests/conftest.py) each consume one pool, so each connects through
``shared_models.roles.pool_database_url`` (here: QUANTPIPE_DB_ROLES=login on the session's
own server, the embedded default). The forbidden statements carry ``WHERE false`` or touch
no row: PostgreSQL checks privileges before it plans, so a missing grant still raises 42501.
"""

from __future__ import annotations

import uuid

import psycopg2
import pytest
from sqlalchemy import create_engine, pool, text

from shared_models import roles
from shared_models.db import database_url
from shared_models.settings import get_settings
from workers.app import app

FORBIDDEN = {
    "ingest": ["UPDATE shadow_models SET description = description WHERE false",
               "DELETE FROM pattern_detections WHERE false",
               "UPDATE ingest_events SET weight = weight WHERE false",
               "INSERT INTO market_bars SELECT * FROM market_bars WHERE false",
               "SELECT 1 FROM notification_subscriptions LIMIT 0"],
    "patterns": ["UPDATE ingest_interests SET score = score WHERE false",
                 "DELETE FROM market_bars WHERE false",
                 "INSERT INTO shadow_trades SELECT * FROM shadow_trades WHERE false",
                 "UPDATE dead_letters SET reason = reason WHERE false",
                 "SELECT 1 FROM ingest_events LIMIT 0"],
    "shadow": ["DELETE FROM shadow_trades WHERE false",
               "INSERT INTO shadow_models SELECT * FROM shadow_models WHERE false",
               "UPDATE market_bars SET close = close WHERE false",
               "SELECT 1 FROM ingest_events LIMIT 0"],
    "discovery": ["INSERT INTO trades SELECT * FROM trades WHERE false",
                  "UPDATE politicians SET id = id WHERE false",
                  "DELETE FROM pattern_discoveries WHERE false",
                  "UPDATE shadow_models SET description = description WHERE false",
                  "UPDATE table_versions SET version = version WHERE false",
                  "UPDATE pattern_bar_versions SET version = version WHERE false"],
    "notify": ["UPDATE notification_subscriptions SET name = name WHERE false",
               "DELETE FROM notification_deliveries WHERE false",
               "INSERT INTO market_bars SELECT * FROM market_bars WHERE false"],
}
EVERYONE = ["TRUNCATE dead_letters", "DROP TABLE market_bars", "CREATE TABLE qp_role_probe (x int)",
            "ALTER TABLE dead_letters ADD COLUMN qp_probe int", "CREATE ROLE qp_role_probe",
            "UPDATE api_keys SET name = name WHERE false"]
LOGIN_ONLY = ["RESET ROLE; UPDATE api_keys SET name = name WHERE false"]  # a login has no owner to go back to


def _pool_url(pool_name: str) -> str:
    return roles.pool_database_url(pool_name, database_url(), get_settings())


@pytest.mark.parametrize("pool_name", sorted(roles.POOL_ROLES))
def test_the_role_cannot_write_what_it_must_not(pool_name):
    engine = create_engine(_pool_url(pool_name), poolclass=pool.NullPool)
    proxy = engine.raw_connection()
    conn = proxy.driver_connection
    extra = LOGIN_ONLY if roles.mode(get_settings()) == "login" else []
    try:
        for sql in FORBIDDEN[pool_name] + EVERYONE + extra:
            with conn.cursor() as cur:
                with pytest.raises(psycopg2.Error) as err:
                    cur.execute(sql)
                assert err.value.pgcode == "42501", (pool_name, sql, err.value.pgcode, str(err.value))
            conn.rollback()
        with conn.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == roles.POOL_ROLES[pool_name]
    finally:
        proxy.close()
        engine.dispose()


def _pool_sessions(engine, pool_name: str) -> list[str]:
    with engine.connect() as c:
        return list(c.execute(text("SELECT usename FROM pg_stat_activity WHERE application_name = :a "
                                   "AND datname = current_database()"), {"a": f"quantpipe-{pool_name}"}).scalars())


def test_each_pools_worker_does_its_work_as_its_role(workers, engine):
    """Real work on every session worker; its retention task reports the role it ran as."""
    from workers.patterns import synthetic

    symbol = "ROLE" + uuid.uuid4().hex[:4].upper()
    f = synthetic.generate(2, seed=11)
    bar = {"ts": f.ts.iloc[-1].timestamp(), "open": float(f.open.iloc[-1]), "high": float(f.high.iloc[-1]),
           "low": float(f.low.iloc[-1]), "close": float(f.close.iloc[-1]), "volume": float(f.volume.iloc[-1])}
    missing = str(uuid.uuid4())
    try:
        out = app.tasks["patterns.on_bar"].delay(symbol, "1d", bar).get(timeout=60)
        assert "rejected" not in out and out["bars"] == 1, out                 # bars + versions + watermark
        ghost = app.tasks["shadow.record_trades"].delay(f"ghost-{symbol}", [{"trade_id": "x"}]).get(timeout=60)
        assert ghost["rejected"] == 1, ghost                                    # a dead letter as shadow
        assert "error" in app.tasks["discovery.scan_politician"].delay(missing).get(timeout=60)
        for pool_name, role in roles.POOL_ROLES.items():
            res = app.tasks[f"{pool_name}.prune"].delay().get(timeout=120)
            assert res["role"] == role and res["complete"], (pool_name, res)
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM market_bars WHERE symbol = :s"), {"s": symbol}).scalar() == 1
        if roles.mode(get_settings()) == "login":   # the worker logged in as the role itself, never the owner
            for pool_name, role in roles.POOL_ROLES.items():
                users = _pool_sessions(engine, pool_name)
                assert users and set(users) == {role}, (pool_name, users)
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM market_bars WHERE symbol = :s"), {"s": symbol})
            c.execute(text("DELETE FROM pattern_bar_versions WHERE symbol = :s"), {"s": symbol})
            c.execute(text("DELETE FROM pattern_scan_state WHERE symbol = :s"), {"s": symbol})
            c.execute(text("DELETE FROM dead_letters WHERE pool IN ('shadow', 'discovery') "
                           "AND (payload::text LIKE :g OR reason LIKE :g OR reason LIKE :m)"),
                      {"g": f"%ghost-{symbol}%", "m": f"%{missing}%"})


def test_migrations_still_run_as_the_owner_and_the_url_names_the_pool():
    url = _pool_url("ingest")
    assert "application_name=quantpipe-ingest" in url
    owner = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with owner.connect() as c:
            assert c.execute(text("SELECT current_user")).scalar() not in roles.POOL_ROLES.values()
    finally:
        owner.dispose()


def test_a_role_prunes_only_its_own_pools_dead_letters(engine):
    """Row-level security (migration 0014): DELETE on dead_letters reaches the role's own pool's rows only."""
    with engine.begin() as c:
        ids = {p: c.execute(text("INSERT INTO dead_letters (pool, source, reason, payload, payload_bytes, "
                                 "payload_sha256) VALUES (:p, 'qp_rls_probe', 'probe', '{}', 2, 'x') RETURNING id"),
                            {"p": p}).scalar() for p in roles.POOL_ROLES}
    try:
        for pool_name in roles.POOL_ROLES:
            eng = create_engine(_pool_url(pool_name), poolclass=pool.NullPool)
            try:
                with eng.begin() as c:
                    gone = c.execute(text("DELETE FROM dead_letters WHERE source = 'qp_rls_probe' RETURNING pool"))
                    assert [r[0] for r in gone] == [pool_name]
                    c.rollback()
            finally:
                eng.dispose()
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM dead_letters WHERE id = ANY(:i)"), {"i": list(ids.values())})

