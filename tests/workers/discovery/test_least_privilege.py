"""The discovery pool runs under its least-privilege role, through its own DATABASE_URL."""

import os
import secrets
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from shared_models.settings import get_settings
from tests.support import WorkerProcess
from tests.workers.discovery.helpers import ensure_loaded
from workers.discovery import scan, tasks


@pytest.fixture(scope="module")
def pid(engine):
    ensure_loaded(engine)
    with engine.connect() as c:
        return c.execute(text("SELECT politician_id::text FROM trades WHERE ticker = 'AAPL' GROUP BY 1 "
                              "ORDER BY count(*) DESC, 1 LIMIT 1")).scalar()


def test_scan_needs_no_more_than_the_role_grants(engine, pid):
    with Session(engine) as s, s.begin():
        s.execute(text("SET LOCAL ROLE quantpipe_discovery"))
        out = scan.scan_politician(s, pid, get_settings().discovery)
        net = scan.scan_network(s, get_settings().discovery)
        assert s.execute(text("SELECT current_user")).scalar() == "quantpipe_discovery"
    assert out.trades > 0 and out.events_studied > 0 and net["experiments"] >= 1


def test_worker_with_a_login_in_the_role(workers, engine, database_url, pid):
    """An operator-style login (password made up at run time, never stored) IN ROLE quantpipe_discovery."""
    role, password = f"qp_disc_login_{uuid.uuid4().hex[:8]}", secrets.token_hex(16)
    with engine.begin() as c:
        c.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD :pw IN ROLE quantpipe_discovery"), {"pw": password})
    url = make_url(database_url).set(username=role, password=password).render_as_string(hide_password=False)
    workers["discovery"].stop()
    try:
        with WorkerProcess("discovery", env={**os.environ, "DISCOVERY_DATABASE_URL": url}, name="disc-role"):
            out = tasks.scan_politician.delay(pid).get(timeout=120)
            assert out["politician_id"] == pid and "error" not in out
            unknown = str(uuid.uuid4())
            bad = tasks.scan_politician.delay(unknown).get(timeout=60)  # dead letter kept under the role too
            assert f"no politician with id {unknown}" in bad["error"]
            with engine.connect() as c:  # the worker's pooled connection is the login role's
                assert c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE usename = :r"),
                                 {"r": role}).scalar() >= 1
    finally:
        workers["discovery"].start()
        with engine.begin() as c:
            c.execute(text(f"DROP ROLE {role}"))
