"""Session fixtures: real PostgreSQL and Redis, a fresh migrated database, real workers.

DATABASE_URL / REDIS_URL set: a fresh database ``qp_test_<hex>`` is created on that
PostgreSQL (dropped afterwards) and that Redis is used. Unset: an embedded
PostgreSQL (pgserver) and Redis are started in a temporary QUANTPIPE_HOME for
this session only. Either way the environment is set *before* any quantpipe
module reads settings, so subprocess workers attach to the same servers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

_STATE: dict = {}

# Short, consistent limits so redelivery after a killed worker happens within a test.
TEST_ENV = {
    "QUANTPIPE_TASK_SOFT_TIME_LIMIT": "100",
    "QUANTPIPE_TASK_TIME_LIMIT": "110",
    "QUANTPIPE_VISIBILITY_TIMEOUT": "120",
}


def _create_database(admin_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from shared_models.db import normalize_url

    url = make_url(normalize_url(admin_url))
    name = f"qp_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    _STATE["admin_url"], _STATE["db_name"] = url, name
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_database() -> None:
    from sqlalchemy import create_engine, text

    if "db_name" not in _STATE:
        return
    engine = create_engine(_STATE["admin_url"], isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{_STATE["db_name"]}" WITH (FORCE)'))
    engine.dispose()


def pytest_configure(config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pass
    os.environ.update({k: os.environ.get(k, v) for k, v in TEST_ENV.items()})
    home = Path(tempfile.mkdtemp(prefix="qp-test-home-"))
    os.chmod(home, 0o755)
    _STATE["home"] = home
    os.environ["QUANTPIPE_HOME"] = str(home)
    os.environ["QUANTPIPE_LOG_DIR"] = str(home / "logs")
    os.environ.setdefault("QP_TEST_LOG_DIR", str(home / "test-logs"))
    from shared_models import embedded

    db, rd = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not db or not rd:
        state = embedded.ensure_services(home, postgres=not db, redis=not rd)
        _STATE["embedded"] = True
        db, rd = db or state.database_url, rd or state.redis_url
    os.environ["DATABASE_URL"] = _create_database(db)
    os.environ["REDIS_URL"] = rd
    from shared_models import migrate

    migrate.upgrade(os.environ["DATABASE_URL"])


def pytest_unconfigure(config) -> None:
    from shared_models import embedded
    from shared_models.db import dispose_engines

    dispose_engines()
    try:
        _drop_database()
    finally:
        if _STATE.get("embedded"):
            embedded.stop_services(_STATE["home"])
        shutil.rmtree(_STATE.get("home", "/nonexistent"), ignore_errors=True)


@pytest.fixture(scope="session")
def database_url() -> str:
    return os.environ["DATABASE_URL"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ["REDIS_URL"]


@pytest.fixture(scope="session")
def engine(database_url):
    from shared_models.db import get_engine

    return get_engine(database_url)


@pytest.fixture()
def session(engine):
    """A session for assertions; tests clean up what they create."""
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        yield s


@pytest.fixture(scope="session")
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def celery_app():
    from workers.app import app

    return app


@pytest.fixture(scope="session")
def workers(celery_app):
    """One real worker per pool, started once for the session."""
    from tests.support import WorkerProcess
    from workers.routing import POOLS

    started = {pool: WorkerProcess(pool, concurrency=1).start(wait=False) for pool in POOLS}
    for w in started.values():
        w.wait_ready()
    yield started
    for w in started.values():
        w.stop()
