"""`quantpipe up` on its own embedded servers: every pool online, Flower behind auth,
and SIGTERM leaves no process it started."""

import base64
import json
import os
import shutil
import tempfile
from pathlib import Path
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from shared_models.embedded import free_port, read_state
from tests.support import ROOT, run_cli
from workers.routing import POOLS


def _get(url: str, auth: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def _descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


@pytest.fixture()
def up_env():
    # not pytest's tmp_path: its 0700 parents are not traversable by pgserver's unprivileged user
    home = Path(tempfile.mkdtemp(prefix="qp-up-home-"))
    os.chmod(home, 0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "QUANTPIPE_DB_ROLES")}
    env.update(QUANTPIPE_HOME=str(home), QUANTPIPE_EMBEDDED="true", FLOWER_PORT=str(free_port()),
               FLOWER_BASIC_AUTH="ops:s3cret-test-only",
               QUANTPIPE_API_PORT=str(free_port()))
    yield env
    shutil.rmtree(home, ignore_errors=True)


def test_up_runs_every_pool_and_sigterm_leaves_nothing(up_env):
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--loglevel", "WARNING"], cwd=ROOT, env=up_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 150
        facts = None
        while time.monotonic() < deadline:
            seen |= _descendants(proc.pid)
            assert proc.poll() is None, proc.stdout.read()
            status = run_cli("status", "--timeout", "1", env=up_env, check=False)
            if status.returncode == 0:
                facts = status.stdout
                break
            time.sleep(1)
        assert facts is not None, f"pools never all online:\n{status.stdout}\n{status.stderr}"
        for pool in POOLS:
            assert f"{pool}@" in facts

        port = up_env["FLOWER_PORT"]
        assert _get(f"http://127.0.0.1:{port}/api/workers")[0] == 401
        assert _get(f"http://127.0.0.1:{port}/api/workers", "ops:wrong")[0] == 401
        workers = {}
        for _ in range(30):
            code, body = _get(f"http://127.0.0.1:{port}/api/workers?refresh=1", up_env["FLOWER_BASIC_AUTH"])
            workers = json.loads(body or b"{}") if code == 200 else {}
            if len(workers) >= len(POOLS):
                break
            time.sleep(1)
        assert sorted(name.split("@")[0] for name in workers) == sorted(POOLS)

        # the API child answers, and `up` left a first admin key under QUANTPIPE_HOME (mode 0600)
        key_file = Path(up_env["QUANTPIPE_HOME"]) / "api_key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        api = f"http://127.0.0.1:{up_env['QUANTPIPE_API_PORT']}"
        code = 0
        for _ in range(30):
            code = _get(f"{api}/health")[0]
            if code == 200:
                break
            time.sleep(1)
        assert code == 200
        req = urllib.request.Request(f"{api}/api/v1/auth/me",
                                     headers={"Authorization": f"Bearer {key_file.read_text().strip()}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read())["scopes"] == ["admin"]

        # a crashed pool is restarted by the supervisor and comes back online
        ingest = [c for c in psutil.Process(proc.pid).children() if "ingest" in c.cmdline()]
        assert len(ingest) == 1
        seen |= _descendants(proc.pid)
        os.killpg(ingest[0].pid, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = run_cli("status", "--timeout", "1", env=up_env, check=False)
            if status.returncode == 0:
                break
            time.sleep(1)
        assert status.returncode == 0, status.stdout

        state = read_state(ROOT / up_env["QUANTPIPE_HOME"])
        servers = {state.postgres_pid, state.redis_pid}
        assert all(servers)
        # the embedded default: every pool's worker logs in as its own role (each runs its prune task)
        from sqlalchemy import create_engine, text

        for pool in POOLS:
            subprocess.run([sys.executable, "-m", "celery", "-A", "workers.app", "call", f"{pool}.prune"],
                           cwd=ROOT, env=up_env, check=True, capture_output=True, timeout=60)
        owner = create_engine(state.database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
        try:
            for _ in range(60):
                with owner.connect() as c:
                    logins = set(c.execute(text("SELECT application_name, usename FROM pg_stat_activity "
                                                "WHERE application_name LIKE 'quantpipe-%'")).all())
                if len({a for a, _ in logins}) == len(POOLS):
                    break
                time.sleep(1)
            assert logins == {(f"quantpipe-{p}", f"quantpipe_{p}") for p in POOLS}, logins
        finally:
            owner.dispose()
        seen |= _descendants(proc.pid)
        assert len(seen) >= len(POOLS) + 2  # workers (+ pool children), beat, flower

        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, out
        assert "all processes stopped" in out
        assert "ingest exited with code -9: restarting" in out
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)
    leftovers = [p for p in seen | servers if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert leftovers == [], [psutil.Process(p).cmdline() for p in leftovers]
