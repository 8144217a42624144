"""Session fixtures: real PostgreSQL and Redis, a fresh migrated database, real workers.

DATABASE_URL / REDIS_URL set: a fresh database ``qp_test_<hex>`` is created on that
PostgreSQL (dropped afterwards) and that Redis is used. Unset: an embedded
PostgreSQL (pgserver) and Redis are started in a temporary QUANTPIPE_HOME for
this session only. Under pytest-xdist (``-n 2``, the default in pyproject) each test
process is its own session with its own embedded servers, database and workers; the
controller starts none. With DATABASE_URL / REDIS_URL set the suite runs in one process.
Either way the environment is set *before* any quantpipe module reads settings, so
subprocess workers attach to the same servers.
"""

from __future__ import annotations

import os

import pytest

_STATE: dict = {}

# Short, consistent limits so redelivery after a killed worker happens within a test.
TEST_ENV = {
    "QUANTPIPE_TASK_SOFT_TIME_LIMIT": "100",
    "QUANTPIPE_TASK_TIME_LIMIT": "110",
    "QUANTPIPE_VISIBILITY_TIMEOUT": "120",
    # the session's workers leave the heartbeat key alone (tests set it on purpose); the
    # liveness tests start workers with it on
    "PATTERNS_WORKER_HEARTBEAT": "false",
}


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config) -> None:
    """Your own servers: one test process. Roles are per PostgreSQL cluster and Redis pub/sub
    channels per server, so two sessions on one server would race and hear each other."""
    if (os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL")) and getattr(config.option, "numprocesses", None):
        config.option.numprocesses = 0


def _is_xdist_controller(config) -> bool:
    """Under pytest-xdist the controller runs no test: only its workers need servers."""
    return not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"


def pytest_configure(config) -> None:
    if _is_xdist_controller(config):
        return
    os.environ.update({k: os.environ.get(k, v) for k, v in TEST_ENV.items()})
    from tests import scratch

    _STATE["env"] = env = scratch.start("qp_test")
    os.environ.setdefault("QP_TEST_LOG_DIR", str(env.home / "test-logs"))
    # The test process is a client of every pool: it may use any pool's task objects
    # (``app.tasks["ingest.drain"]``). Workers import only their own pool (workers.app).
    from workers.app import load_pools
    from workers.routing import POOLS

    load_pools(POOLS)


def pytest_unconfigure(config) -> None:
    if "env" in _STATE:
        _STATE.pop("env").close()


@pytest.fixture(scope="session")
def database_url() -> str:
    return os.environ["DATABASE_URL"]


@pytest.fixture()
def scratch_db(database_url):
    """(url, engine) of a fresh, empty database on the test server, dropped afterwards."""
    from tests.scratch import scratch_database

    with scratch_database(database_url) as db:
        yield db


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
