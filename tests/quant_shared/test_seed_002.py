"""Seed 002 (discovery service <-> main app) run verbatim against quantpipe on the real data.

Each ``SEED_*`` string below is a code block of the seed, copied unchanged. Only what the
seed leaves to its environment is supplied here: connection strings (a login in the
discovery role for the service, one in the app role for the main app: the seed's
"Security" section), ``db``/``get_db``, ``politician``, and the names its route module uses
without importing them (``select``, ``Politician``, ``UUID``).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from shared_models import discoveries
from shared_models.settings import get_settings
from tests.support import ROOT, run_cli
from tests.workers.discovery.helpers import ensure_loaded

SEED_DISCOVERY_TASK = '''
# discovery/tasks/discovery_tasks.py

from quant_shared.models import PatternDiscovery

# Discover a pattern
discovery = PatternDiscovery(
    politician_id=politician.id,
    pattern_type='fourier_cycle',
    strength=0.92,
    confidence=0.87,
    parameters={'window': 30, 'threshold': 0.8},
    description="Strong 90-day cycle detected"
)
db.add(discovery)
db.commit()
'''

SEED_MAIN_APP_QUERY = '''
# quant/backend/app/api/v1/discoveries.py

from quant_shared.models import PatternDiscovery

@router.get("/discoveries/recent")
async def get_recent_discoveries(db: AsyncSession = Depends(get_db)):
    """Get recent pattern discoveries."""

    stmt = (
        select(PatternDiscovery)
        .where(PatternDiscovery.strength > 0.85)
        .order_by(PatternDiscovery.discovery_date.desc())
        .limit(10)
    )

    discoveries = await db.execute(stmt)
    return discoveries.scalars().all()
'''

SEED_SHARED_MODELS = '''
# Both services use the same models
from quant_shared.models import (
    Politician,      # Read by both
    Trade,           # Read by both
    PatternDiscovery, # Written by Discovery, read by Main
    AnomalyDetection, # Written by Discovery, read by Main
)
'''

SEED_NEW_IMPORTS = '''
# NEW (using shared package)
from quant_shared.models import Politician, Trade
'''

SEED_ROUTES = '''
# quant/backend/app/api/v1/discoveries.py

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from quant_shared.models import PatternDiscovery, AnomalyDetection

router = APIRouter()

@router.get("/discoveries/recent")
async def get_recent_discoveries(
    limit: int = 10,
    db: AsyncSession = Depends(get_db)
):
    """Get recent pattern discoveries."""
    stmt = (
        select(PatternDiscovery)
        .join(Politician)
        .order_by(PatternDiscovery.discovery_date.desc())
        .limit(limit)
    )
    results = await db.execute(stmt)
    return results.scalars().all()

@router.get("/anomalies/critical")
async def get_critical_anomalies(
    severity_threshold: float = 0.8,
    db: AsyncSession = Depends(get_db)
):
    """Get critical anomalies requiring investigation."""
    stmt = (
        select(AnomalyDetection)
        .join(Politician)
        .where(AnomalyDetection.severity >= severity_threshold)
        .where(AnomalyDetection.investigated == False)
        .order_by(AnomalyDetection.severity.desc())
    )
    results = await db.execute(stmt)
    return results.scalars().all()

@router.get("/discoveries/politician/{politician_id}")
async def get_politician_discoveries(
    politician_id: UUID,
    db: AsyncSession = Depends(get_db)
):
    """Get all discoveries for a specific politician."""
    stmt = (
        select(PatternDiscovery)
        .where(PatternDiscovery.politician_id == politician_id)
        .order_by(PatternDiscovery.strength.desc())
    )
    results = await db.execute(stmt)
    return results.scalars().all()
'''

SEED_MONITORING_SQL = '''
-- Check recent discoveries
SELECT * FROM pattern_discoveries
ORDER BY discovery_date DESC
LIMIT 10;

-- Check critical anomalies
SELECT * FROM anomaly_detections
WHERE severity > 0.8
AND investigated = false
ORDER BY severity DESC;

-- Check experiment results
SELECT model_name, deployment_ready, experiment_date
FROM model_experiments
ORDER BY experiment_date DESC;
'''

SEED_TROUBLESHOOTING = '''
from quant_shared.models import PatternDiscovery
from sqlalchemy import select

stmt = select(PatternDiscovery).limit(5)
results = db.execute(stmt)
print(list(results.scalars()))  # Should show discoveries
'''


def run_seed(block: str, name: str, **env) -> dict:
    """Execute one seed block in a fresh namespace holding ``env``; return the namespace."""
    namespace = dict(env)
    exec(compile(block, f"<seed 002: {name}>", "exec"), namespace)  # noqa: S102 - the seed's own code
    return namespace


@pytest.fixture(scope="module")
def findings(engine):
    """The real disclosure files loaded and scanned (in process, as the owner) unless a scan already
    left what the seed's queries look for: strong patterns, open severe anomalies, experiments."""
    ensure_loaded(engine)
    probe = ("SELECT (SELECT count(*) FROM pattern_discoveries WHERE strength > 0.85) * "
             "(SELECT count(*) FROM anomaly_detections WHERE severity > 0.8 AND NOT investigated) * "
             "(SELECT count(*) FROM model_experiments)")
    with engine.connect() as c:
        ready = c.execute(text(probe)).scalar()
    if not ready:
        from workers.discovery import scan, tasks

        settings = get_settings().discovery
        for pid in tasks.politician_ids():
            with Session(engine) as s, s.begin():
                scan.scan_politician(s, pid, settings)
        with Session(engine) as s, s.begin():
            scan.scan_network(s, settings)
    with engine.connect() as c:
        assert c.execute(text(probe)).scalar() > 0


@pytest.fixture(scope="module")
def logins(engine, database_url, findings):
    """{"discovery": url, "app": url}: operator-style logins in the two roles (made-up passwords)."""
    made, urls = [], {}
    for pool, role in (("discovery", "quantpipe_discovery"), ("app", "quantpipe_app")):
        name, password = f"qp_seed_{pool}_{uuid.uuid4().hex[:8]}", secrets.token_hex(16)
        with engine.begin() as c:
            c.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD :pw IN ROLE {role}"), {"pw": password})
        made.append(name)
        urls[pool] = make_url(database_url).set(username=name, password=password)
    yield urls
    with engine.begin() as c:
        for name in made:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :n"), {"n": name})
            c.execute(text(f"DROP ROLE {name}"))


def _sync_session(url):
    eng = create_engine(url.set(drivername="postgresql+psycopg2"))
    return eng, Session(eng)


def _run_async(url, call):
    """Run ``call(session)`` on an AsyncSession over asyncpg, as the main app does."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    async def main():
        eng = create_async_engine(url.set(drivername="postgresql+asyncpg"))
        try:
            async with async_sessionmaker(eng)() as db:
                return await call(db)
        finally:
            await eng.dispose()

    return asyncio.run(main())


def _routes(url) -> dict:
    """Both route modules of the seed, with a ``get_db`` that yields the app login's AsyncSession."""
    from fastapi import APIRouter, Depends
    from sqlalchemy.ext.asyncio import AsyncSession

    async def get_db():  # the main app's dependency (not shown in the seed)
        raise AssertionError("called directly in this test, with db=")

    env = {"select": select, "UUID": uuid.UUID, "get_db": get_db}
    first = run_seed(SEED_MAIN_APP_QUERY, "Main App <- Database",
                     router=APIRouter(), Depends=Depends, AsyncSession=AsyncSession, **env)
    models = run_seed(SEED_SHARED_MODELS, "Shared Models")
    second = run_seed(SEED_ROUTES, "API Endpoints (Main App)", Politician=models["Politician"], **env)
    return {"strong_recent": first["get_recent_discoveries"], **{k: second[k] for k in (
        "get_recent_discoveries", "get_critical_anomalies", "get_politician_discoveries")}}


def _names(engine) -> dict:
    with engine.connect() as c:
        return dict(c.execute(text("SELECT id, full_name FROM politicians")).all())


def test_discovery_service_writes_a_discovery_as_the_seed_does(engine, logins):
    eng, db = _sync_session(logins["discovery"])
    try:
        from quant_shared.models import Politician

        politician = db.scalars(select(Politician).where(Politician.full_name.ilike("%wyden%"))).one()
        ns = run_seed(SEED_DISCOVERY_TASK, "Discovery Service -> Database", db=db, politician=politician)
        written = ns["discovery"]
        written_id = written.id
        assert written_id is not None and written.subject.startswith("params:")
        assert written.politician_name == politician.full_name  # the frontend's field, loaded with the row
        again = ns["PatternDiscovery"](politician_id=politician.id, pattern_type="fourier_cycle", strength=0.5,
                                       confidence=0.5, parameters={"window": 30, "threshold": 0.8},
                                       description="the same discovery written twice")
        db.add(again)
        with pytest.raises(sqlalchemy.exc.IntegrityError, match="uq_pattern_discoveries_natural_key"):
            db.commit()  # one row per natural key: same politician, type and parameters
        db.rollback()
    finally:
        db.close()
        eng.dispose()
    with engine.begin() as c:
        assert c.execute(text("DELETE FROM pattern_discoveries WHERE id = :i"), {"i": written_id}).rowcount == 1


def test_main_app_routes_run_verbatim_on_an_async_session(engine, logins):
    from fastapi.encoders import jsonable_encoder

    routes, names = _routes(logins["app"]), _names(engine)

    async def calls(db):
        strong = await routes["strong_recent"](db=db)
        recent = await routes["get_recent_discoveries"](limit=10, db=db)
        critical = await routes["get_critical_anomalies"](severity_threshold=0.8, db=db)
        busiest = max({d.politician_id for d in recent}, key=lambda p: sum(d.politician_id == p for d in recent))
        person = await routes["get_politician_discoveries"](politician_id=busiest, db=db)
        return strong, recent, critical, person, busiest

    strong, recent, critical, person, busiest = _run_async(logins["app"], calls)
    assert 0 < len(strong) <= 10 and all(d.strength > 0.85 for d in strong)
    assert [d.discovery_date for d in strong] == sorted((d.discovery_date for d in strong), reverse=True)
    assert len(recent) == 10 and isinstance(recent[0].politician_id, uuid.UUID)
    assert critical and all(a.severity >= 0.8 and not a.investigated for a in critical)
    assert [a.severity for a in critical] == sorted((a.severity for a in critical), reverse=True)
    assert person and all(d.politician_id == busiest for d in person)
    assert [d.strength for d in person] == sorted((d.strength for d in person), reverse=True)
    # What FastAPI sends for a route returning ORM rows, read the way the seed's frontend reads it.
    for d in jsonable_encoder(strong + recent + person):
        card = {"type": d["pattern_type"], "strength": d["strength"], "politician": d["politician_name"],
                "description": d["description"]}
        assert all(v is not None for v in card.values())
        assert card["politician"] == names[uuid.UUID(d["politician_id"])]
    # The read layer quantpipe's API serves answers the same questions with the same rows.
    with Session(engine) as s:
        assert {d.id for d in person} == {r["id"] for r in discoveries.politician_discoveries(s, busiest)}
        ours = discoveries.critical_anomalies(s, 0.8, limit=500)
        assert {a.id for a in critical} == {r["id"] for r in ours} and len(critical) < 500
        assert {d.id for d in strong} <= {r["id"] for r in discoveries.recent_discoveries(s, 0.85, limit=500)}


def test_shared_models_and_trades_read_by_the_main_app(engine, logins):
    ns = run_seed(SEED_NEW_IMPORTS, "Update Main App Imports")
    eng, db = _sync_session(logins["app"])
    try:
        trades = db.scalars(select(ns["Trade"]).limit(5)).all()
        person = db.get(ns["Politician"], trades[0].politician_id)
        assert len(trades) == 5 and person.full_name
    finally:
        db.close()
        eng.dispose()


def test_troubleshooting_snippet_shows_discoveries(logins, capsys):
    eng, db = _sync_session(logins["app"])
    try:
        run_seed(SEED_TROUBLESHOOTING, "Discoveries not appearing in main app", db=db)
    finally:
        db.close()
        eng.dispose()
    printed = capsys.readouterr().out
    assert printed.count("PatternDiscovery") == 5


def _psql() -> str:
    import pgserver

    return shutil.which("psql") or str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql")


def test_monitoring_sql_in_psql_and_psycopg2(logins):
    url = logins["app"].set(drivername="postgresql").render_as_string(hide_password=False)
    proc = subprocess.run([_psql(), url, "-v", "ON_ERROR_STOP=1", "-X", "-f", "-"], input=SEED_MONITORING_SQL,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "discovery_date" in proc.stdout and "(10 rows)" in proc.stdout
    assert "model_name | deployment_ready | experiment_date" in re.sub(" +", " ", proc.stdout)

    statements = [s for s in SEED_MONITORING_SQL.split(";") if s.strip()]
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(statements[0])
            cols = [d.name for d in cur.description]
            recent = [dict(zip(cols, r)) for r in cur.fetchall()]
            cur.execute(statements[1])
            cols = [d.name for d in cur.description]
            critical = [dict(zip(cols, r)) for r in cur.fetchall()]
            cur.execute(statements[2])
            experiment_cols, experiments = [d.name for d in cur.description], cur.fetchall()
    finally:
        conn.close()
    assert len(recent) == 10 and {"pattern_type", "strength", "description", "politician_id"} <= set(recent[0])
    assert [r["discovery_date"] for r in recent] == sorted((r["discovery_date"] for r in recent), reverse=True)
    assert critical and all(a["severity"] > 0.8 and a["investigated"] is False for a in critical)
    assert experiment_cols == ["model_name", "deployment_ready", "experiment_date"] and len(experiments) >= 1


def _denied(url, sql: str) -> bool:
    eng = create_engine(url.set(drivername="postgresql+psycopg2"))
    try:
        with eng.connect() as c:
            c.execute(text(sql))
            c.rollback()
        return False
    except sqlalchemy.exc.ProgrammingError as exc:
        assert "permission denied" in str(exc)
        return True
    finally:
        eng.dispose()


def test_database_access_is_what_the_seed_security_section_lists(logins):
    disc, app = logins["discovery"], logins["app"]
    # Discovery service: READ politicians, trades; WRITE the outputs; NOT write politicians or trades.
    assert not _denied(disc, "SELECT count(*) FROM politicians, trades WHERE false")
    assert not _denied(disc, "UPDATE anomaly_detections SET severity = severity WHERE false")
    assert _denied(disc, "INSERT INTO politicians (key, full_name, chamber) VALUES ('k', 'n', 'house')")
    assert _denied(disc, "UPDATE trades SET ticker = ticker WHERE false")
    # Main app: reads politicians, trades and the outputs; its one write is marking anomalies investigated.
    assert not _denied(app, "SELECT count(*) FROM politicians, trades, pattern_discoveries, anomaly_detections, "
                            "model_experiments, network_discoveries WHERE false")
    assert not _denied(app, "UPDATE anomaly_detections SET investigated = investigated WHERE false")
    assert _denied(app, "UPDATE anomaly_detections SET severity = severity WHERE false")
    assert _denied(app, "DELETE FROM pattern_discoveries WHERE false")


def test_alembic_upgrade_head_creates_the_discovery_tables(scratch_db):
    url, eng = scratch_db
    proc = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "DATABASE_URL": url})
    assert proc.returncode == 0, proc.stderr
    assert {"pattern_discoveries", "anomaly_detections", "model_experiments",
            "network_discoveries"} <= set(inspect(eng).get_table_names())


def test_scan_one_politician_by_its_uuid(workers, engine, findings):
    with engine.connect() as c:
        pid = c.execute(text("SELECT id FROM politicians WHERE full_name ILIKE '%wyden%'")).scalar()
    out = run_cli("scan", "politician", "--id", str(pid)).stdout
    assert str(pid)[:8] in out and "written" in out
