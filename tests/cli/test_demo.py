"""`quantpipe demo --once` on the session's servers: every pool does real work, nothing is left running.

The demo gets a database of its own on the session's PostgreSQL and a Redis database index of
its own on the session's Redis (its queues, streams and keys), so its workers never take the
session workers' tasks and its loaded prices never meet the other tests' scans.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest
from sqlalchemy import create_engine, text

from shared_models.db import normalize_url
from tests.scratch import create_database, drop_database
from tests.support import ROOT

COUNTS = {
    "pattern_detections": "SELECT count(*) FROM pattern_detections",
    "published": "SELECT count(*) FROM integration_events WHERE checkpoint = 'PATTERN_PUBLISHED'",
    "received": "SELECT count(*) FROM integration_events WHERE checkpoint = 'EVENT_RECEIVED'",
    "ingest_events": "SELECT count(*) FROM ingest_events",
    "findings": "SELECT (SELECT count(*) FROM pattern_discoveries) + (SELECT count(*) FROM anomaly_detections)",
    "shadow_trades": "SELECT count(*) FROM shadow_trades",
    "shadow_evaluations": "SELECT count(*) FROM shadow_evaluations",
}


def _other_db(redis_url: str, index: int = 9) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path=f"/{index}"))


def _tree(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


@pytest.fixture()
def demo_env(database_url, redis_url):
    import redis

    url = create_database(database_url, "qp_demo")
    home = Path(tempfile.mkdtemp(prefix="qp-demo-home-"))
    os.chmod(home, 0o755)
    rurl = _other_db(redis_url)
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": rurl, "QUANTPIPE_HOME": str(home),
           "QUANTPIPE_LOG_DIR": str(home / "logs"), "PATTERNS_WORKER_HEARTBEAT": "true", "COLUMNS": "200"}
    client = redis.Redis.from_url(rurl)
    client.flushdb()
    yield env
    client.flushdb()
    client.close()
    drop_database(url)
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_demo_once_makes_every_pool_work_and_leaves_nothing_running(demo_env):
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "demo", "--once", "--minutes", "2", "--symbols", "80",
                             "--days", "40", "--speed", "0", "--users", "40", "--events-per-second", "40"],
                            cwd=ROOT, env=demo_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: set[int] = set()
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            seen |= _tree(proc.pid)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, out
    for pool in ("patterns", "ingest", "discovery", "shadow"):
        assert re.search(rf"^ok {pool}: ", out, re.M), out
    assert "every pool did work" in out
    assert len(seen) >= 6, seen  # five workers (+ their pool processes) and beat were its children

    engine = create_engine(normalize_url(demo_env["DATABASE_URL"]))
    try:
        with engine.connect() as conn:
            got = {k: conn.execute(text(q)).scalar_one() for k, q in COUNTS.items()}
            decisions = conn.execute(text("SELECT count(*) FROM shadow_evaluations "
                                          "WHERE decision IN ('APPROVED', 'REJECTED')")).scalar_one()
            trade_models = conn.execute(text("SELECT count(DISTINCT model_id) FROM shadow_trades")).scalar_one()
    finally:
        engine.dispose()
    assert all(v > 0 for v in got.values()), got
    assert got["published"] == got["pattern_detections"]       # every detection was published (flows logged)
    assert trade_models == 3                                    # a champion and two challengers traded
    assert decisions >= 1, (got, out)                           # a promotion or a rejection happened
    time.sleep(1)
    alive = [p for p in seen if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running: {alive}"
    print(f"demo --once took {elapsed:.0f} s: {got}")


@pytest.mark.slow
def test_up_demo_shows_the_pools_working_and_sigint_leaves_nothing(demo_env):
    """`up --demo`: the data loaded, the sources feeding every pool, the live view printed (not raw
    logs), every process's log in QUANTPIPE_LOG_DIR; SIGINT stops it all."""
    import signal
    import threading

    from shared_models.embedded import free_port

    env = {**demo_env, "FLOWER_PORT": str(free_port()), "QUANTPIPE_API_PORT": str(free_port()),
           "FLOWER_BASIC_AUTH": "ops:s3cret-test-only"}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--demo", "--symbols", "30", "--days", "30",
                             "--speed", "0", "--users", "20", "--events-per-second", "20"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    seen: set[int] = set()
    engine = create_engine(normalize_url(env["DATABASE_URL"]))
    got: dict = {}
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert proc.poll() is None, "".join(lines)
            seen |= _tree(proc.pid)
            try:
                with engine.connect() as conn:
                    got = {k: conn.execute(text(COUNTS[k])).scalar_one()
                           for k in ("pattern_detections", "ingest_events", "findings", "shadow_trades")}
            except Exception:  # noqa: BLE001 - not migrated yet
                got = {}
            if got and all(got.values()) and any("producer heartbeat" in line for line in lines):
                break
            time.sleep(2)
        assert got and all(got.values()), (got, "".join(lines))
        seen |= _tree(proc.pid)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        engine.dispose()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "all processes stopped" in out
    assert "pool       workers  tasks/s  queue  last result" in out    # the live view, not raw logs
    assert "celery@" not in out and "] Task " not in out
    logs = Path(env["QUANTPIPE_LOG_DIR"])
    for name in ("ingest", "patterns", "discovery", "shadow", "notify", "beat", "demo", "api", "flower"):
        assert (logs / f"{name}.log").stat().st_size > 0, name
    time.sleep(1)
    alive = [p for p in seen if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running: {alive}"
