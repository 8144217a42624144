"""A real ``quantpipe api`` (uvicorn subprocess on a free port) over the session's real servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    def __init__(self, workers: int = 1, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(os.environ.get("QP_TEST_LOG_DIR", "/tmp")) / f"api-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "ApiServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--port", str(self.port),
                                      "--workers", str(self.workers)], cwd=ROOT, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"quantpipe api exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                httpx.get(self.url + "/openapi.json", timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError(f"quantpipe api not up after {timeout}s; log {self.log_path}")

    def stop(self) -> None:
        if self.proc is None:
            return
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def api_server():
    server = ApiServer().start()
    yield server
    server.stop()


def make_key(*scopes: str, name: str = "test") -> str:
    from api.keys import create_key
    from shared_models.db import unit_of_work

    with unit_of_work() as session:
        _, plaintext = create_key(session, name, scopes, created_by="tests")
    return plaintext


@pytest.fixture(scope="session")
def keys() -> dict[str, str]:
    """One key per scope."""
    return {s: make_key(s, name=f"test-{s}") for s in ("read", "track", "admin")}


@pytest.fixture(scope="session")
def client(api_server, keys):
    """httpx client with the admin key; pass ``headers=`` to act as another key."""
    with httpx.Client(base_url=api_server.url, headers={"Authorization": f"Bearer {keys['admin']}"},
                      timeout=30) as c:
        yield c


def as_key(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {"Authorization": ""}
