"""``quantpipe up | worker | beat | flower``: run the pipeline's processes.

``up`` is a small supervisor: it migrates, starts the five pools, beat and Flower
as child processes with prefixed logs, and on Ctrl+C / SIGTERM stops them
gracefully (warm shutdown first, then SIGKILL of whatever is left in each child's
process group), and stops the embedded servers it started. Nothing is orphaned:
children also get PR_SET_PDEATHSIG so a SIGKILLed supervisor takes them along.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.markup import escape

from shared_models.home_secrets import home_secret
from workers.routing import POOLS

from .console import console, fail, pass_settings
from .demo.command import options as demo_options

COLORS = {"ingest": "cyan", "patterns": "magenta", "discovery": "yellow", "shadow": "green", "notify": "red",
          "beat": "blue", "flower": "bright_black", "listener": "bright_magenta", "api": "bright_cyan"}
GRACE_SECONDS = 30.0


def celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.app", *args]


def worker_argv(pool: str, concurrency: int, loglevel: str = "INFO") -> list[str]:
    return celery_argv("worker", "-Q", pool, "-n", f"{pool}@%h", "--concurrency", str(concurrency),
                       "--loglevel", loglevel, "-E", "--without-mingle", "--without-gossip")


def beat_argv(home: Path, loglevel: str = "INFO") -> list[str]:
    home.mkdir(parents=True, exist_ok=True)
    return celery_argv("beat", "--schedule", str(home / "celerybeat-schedule"),
                       "--pidfile", str(home / "celerybeat.pid"), "--loglevel", loglevel)


def listener_argv() -> list[str]:
    """The backtest-job listener: pub/sub keeps no backlog, so it is a process, not a task."""
    return [sys.executable, "-m", "cli.main", "patterns", "listen"]


def api_argv() -> list[str]:
    """The HTTP API (`quantpipe api`, host/port/workers from QUANTPIPE_API_*)."""
    return [sys.executable, "-m", "cli.main", "api"]


def flower_auth(settings) -> str:
    """FLOWER_BASIC_AUTH, or credentials generated once under QUANTPIPE_HOME (mode 0600)."""
    if settings.flower_basic_auth:
        if ":" not in settings.flower_basic_auth:
            fail("FLOWER_BASIC_AUTH must be user:password")
        return settings.flower_basic_auth
    return home_secret(settings.home / "flower_auth", lambda: f"admin:{secrets.token_urlsafe(18)}".encode(),
                       "FLOWER_BASIC_AUTH").decode()


def flower_argv(settings) -> list[str]:
    return celery_argv("flower", f"--port={settings.flower_port}", "--address=127.0.0.1",
                       f"--db={settings.home / 'flower.db'}", "--persistent=False")


def child_env(settings, database_url: str, redis_url: str) -> dict[str, str]:
    """Children get the resolved URLs so they attach to the same servers."""
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, FLOWER_BASIC_AUTH=flower_auth(settings),
               PYTHONUNBUFFERED="1")
    from shared_models.roles import mode

    env["QUANTPIPE_DB_ROLES"] = mode(settings)  # "auto" would read the embedded URL given here as configured
    return env


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    pump: threading.Thread | None = field(default=None, repr=False)
    log_path: Path | None = None  # every line also goes to this file (QUANTPIPE_LOG_DIR/<name>.log)
    echo: bool = True             # print lines on the console (off under the live view / demo --once)

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(self.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        color = COLORS.get(self.name, "white")
        assert self.proc is not None and self.proc.stdout is not None
        log = open(self.log_path, "a", buffering=1) if self.log_path is not None else None
        try:
            for line in self.proc.stdout:
                if log is not None:
                    log.write(line)
                if self.echo:
                    console.print(f"[{color}]{self.name:>9} |[/] {escape(line.rstrip())}", soft_wrap=True)
        finally:
            if log is not None:
                log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

    def reap(self, deadline: float) -> None:
        """Wait for a warm shutdown until ``deadline``, then kill the whole process group."""
        assert self.proc is not None
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            console.print(f"[red]{self.name} did not stop in time: killing it[/]")
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # sweep pool children left in the group
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


class Supervisor:
    """Runs the children; a child that dies is restarted with backoff, one that keeps
    dying (MAX_RESTARTS within RESTART_WINDOW seconds) stops the whole run."""

    MAX_RESTARTS = 5
    RESTART_WINDOW = 120.0

    def __init__(self, children: list[Child], env: dict[str, str]):
        self.children, self.env = children, env
        self.stopping = threading.Event()
        self.exit_code = 0
        self.restarts: dict[str, list[float]] = {c.name: [] for c in children}

    def _on_signal(self, signum, _frame) -> None:
        if not self.stopping.is_set():
            console.print(f"[bold]received {signal.Signals(signum).name}: shutting down[/]")
        self.stopping.set()

    def _restart(self, child: Child) -> bool:
        now = time.monotonic()
        recent = [t for t in self.restarts[child.name] if now - t < self.RESTART_WINDOW]
        code = child.proc.returncode  # type: ignore[union-attr]
        if len(recent) >= self.MAX_RESTARTS:
            console.print(f"[bold red]{child.name} exited with code {code} {len(recent)} times in "
                          f"{self.RESTART_WINDOW:.0f}s: giving up[/]")
            return False
        delay = min(2 ** len(recent) * 0.5, 10.0)
        console.print(f"[bold red]{child.name} exited with code {code}: restarting in {delay:.1f}s[/]")
        child.reap(time.monotonic())  # sweep any pool children it left behind
        if self.stopping.wait(delay):
            return True
        self.restarts[child.name] = recent + [time.monotonic()]
        child.start(self.env)
        return True

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        try:
            for child in self.children:
                child.start(self.env)
            while not self.stopping.wait(0.5):
                for child in self.children:
                    if not child.alive() and not self.stopping.is_set() and not self._restart(child):
                        self.exit_code = 1
                        self.stopping.set()
                        break
        finally:
            self.shutdown()
        return self.exit_code

    def shutdown(self) -> None:
        # beat first (no new work), then workers (finish current tasks), Flower last
        order = sorted(self.children, key=lambda c: {"beat": 0, "listener": 0, "api": 0, "flower": 2}.get(c.name, 1))
        for child in order:
            child.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        for child in order:
            if child.proc is not None:
                child.reap(deadline)


@click.command()
@click.option("--concurrency", "-c", type=click.IntRange(1, 64), default=None,
              help="Processes per pool (default: QUANTPIPE_CONCURRENCY).")
@click.option("--pools", default=",".join(POOLS), show_default=True, help="Comma-separated pools to run.")
@click.option("--no-beat", is_flag=True, help="Do not start celery beat.")
@click.option("--no-flower", is_flag=True, help="Do not start Flower.")
@click.option("--no-api", is_flag=True, help="Do not start the HTTP API.")
@click.option("--loglevel", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--demo", is_flag=True, help="Load the shipped data if needed and drive every pool with the demo's "
                                           "sources (see `quantpipe demo --help`) until Ctrl+C.")
@click.option("--logs", "raw_logs", is_flag=True, help="Print the processes' raw interleaved logs instead of the "
                                                       "live view (they always go to QUANTPIPE_LOG_DIR too).")
@demo_options
@pass_settings
def up(settings, concurrency, pools, no_beat, no_flower, no_api, loglevel, demo, raw_logs, **demo_kw) -> None:
    """Migrate, then run every worker pool, beat, the backtest listener, Flower and the API until Ctrl+C / SIGTERM.

    The terminal shows a live view (one line per pool every few seconds); full logs are in
    QUANTPIPE_LOG_DIR/<process>.log. With --demo, every pool gets real work on the shipped data.
    """
    from shared_models import embedded, migrate
    from shared_models.db import service_urls

    wanted = [p.strip() for p in pools.split(",") if p.strip()]
    unknown = set(wanted) - set(POOLS)
    if unknown:
        fail(f"--pools: unknown pool(s) {', '.join(sorted(unknown))}; choose from {', '.join(POOLS)}")
    before = embedded.read_state(settings.home.resolve())
    had_pg, had_redis = embedded._alive(before.postgres_pid), embedded._alive(before.redis_pid)
    with console.status("starting servers and migrating…"):
        db_url, redis_url = service_urls()
        migrate.upgrade(db_url)
    started_pg = settings.database_url is None and not had_pg
    started_redis = settings.redis_url is None and not had_redis
    where = "embedded" if settings.embedded else "configured"
    console.print(f"[bold]database[/] and [bold]redis[/] ready ({where}); schema at "
                  f"{migrate.current_revision(db_url)}")
    n = concurrency or settings.worker_concurrency
    if demo:
        from shared_models.db import get_engine

        from .demo.data import ensure_loaded

        ensure_loaded(get_engine(db_url), console, symbols=demo_kw["symbols"], replay=demo_kw["days"])
    children = [Child(pool, worker_argv(pool, n, loglevel)) for pool in wanted]
    if not no_beat:
        children.append(Child("beat", beat_argv(settings.home.resolve(), loglevel)))
    if "patterns" in wanted:
        children.append(Child("listener", listener_argv()))
    if not no_flower:
        children.append(Child("flower", flower_argv(settings)))
        user = flower_auth(settings).split(":", 1)[0]
        source = "FLOWER_BASIC_AUTH" if settings.flower_basic_auth else str(settings.home / "flower_auth")
        console.print(f"Flower: http://127.0.0.1:{settings.flower_port}  (user [bold]{user}[/], "
                      f"password in {source})")
    if not no_api:
        from .api import bootstrap_key

        children.append(Child("api", api_argv()))
        key_path, _ = bootstrap_key(settings, db_url)
        console.print(f"API: http://{settings.api.host}:{settings.api.port}  (docs /docs; admin key in {key_path}; "
                      "more with `quantpipe api-key create`)")
        console.print(f"Dashboard: http://{settings.api.host}:{settings.api.port}/dashboard  "
                      f"(log in with the key in {key_path}, or a read key)")
    if demo:
        children.append(Child("demo", demo_argv(demo_kw)))
    log_dir = settings.log_dir.resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    for child in children:
        child.log_path, child.echo = log_dir / f"{child.name}.log", raw_logs
    console.print(f"logs: {log_dir}/<process>.log" + ("" if raw_logs else "  (`quantpipe up --logs` prints them here)"))
    env = child_env(settings, db_url, redis_url)
    if demo:
        from .demo.command import demo_env

        env.update(demo_env())
    code = _supervise(Supervisor(children, env), None if raw_logs else (db_url, redis_url))
    stop_started_servers(settings, started_pg, started_redis)
    console.print("[bold]all processes stopped[/]")
    raise SystemExit(code)


def demo_argv(kw: dict) -> list[str]:
    """The demo's sources as a child (`quantpipe demo --feed`), with up's demo options."""
    argv = [sys.executable, "-m", "cli.main", "demo", "--feed", "--minutes", "0",
            "--speed", str(1.0 if kw["speed"] is None else kw["speed"]),
            "--days", str(kw["days"]), "--users", str(kw["users"]), "--events-per-second", str(kw["events_per_second"])]
    return argv + (["--symbols", str(kw["symbols"])] if kw["symbols"] else [])


def _supervise(sup: Supervisor, view_urls: tuple[str, str] | None) -> int:
    """Run the supervisor; with ``view_urls`` (database, Redis) the live view runs beside it."""
    if view_urls is None:
        return sup.run()
    import redis

    from shared_models.db import get_engine

    from .live_view import LiveView

    view = LiveView(get_engine(view_urls[0]), redis.Redis.from_url(view_urls[1], socket_timeout=5))
    stop = threading.Event()
    thread = threading.Thread(target=view.run, args=(stop,), name="live-view", daemon=True)
    thread.start()
    try:
        return sup.run()
    finally:
        stop.set()
        thread.join(10)


def servers_running(settings) -> tuple[bool, bool]:
    """(postgres, redis): whether the embedded servers already run (before this command starts them)."""
    from shared_models import embedded

    before = embedded.read_state(settings.home.resolve())
    return embedded._alive(before.postgres_pid), embedded._alive(before.redis_pid)


def stop_started_servers(settings, started_pg: bool, started_redis: bool) -> None:
    """Stop the embedded servers this command started (not ones that ran before it)."""
    from shared_models import embedded

    if started_pg or started_redis:
        state = embedded.read_state(settings.home.resolve())
        if started_redis:
            embedded.stop_pid(state.redis_pid)
        if started_pg:
            embedded.stop_postgres(state.pgdata, state.postgres_pid)
        (settings.home.resolve() / embedded.STATE_FILE).unlink(missing_ok=True)
        console.print("stopped the embedded servers this run started")


def _exec(settings, argv: list[str]) -> None:
    from shared_models.db import service_urls

    db_url, redis_url = service_urls()
    os.execve(argv[0], argv, child_env(settings, db_url, redis_url))


@click.command()
@click.argument("pool", type=click.Choice(POOLS))
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=None,
              help="Worker processes (default: QUANTPIPE_CONCURRENCY).")
@click.option("--loglevel", default="INFO", show_default=True)
@pass_settings
def worker(settings, pool, concurrency, loglevel) -> None:
    """Run one worker of POOL consuming only its queue (scale by running more)."""
    _exec(settings, worker_argv(pool, concurrency or settings.worker_concurrency, loglevel))


@click.command()
@click.option("--loglevel", default="INFO", show_default=True)
@pass_settings
def beat(settings, loglevel) -> None:
    """Run celery beat. Run exactly one per deployment."""
    _exec(settings, beat_argv(settings.home.resolve(), loglevel))


@click.command()
@pass_settings
def flower(settings) -> None:
    """Run Flower behind basic auth on FLOWER_PORT."""
    user = flower_auth(settings).split(":", 1)[0]  # an unusable secret fails before the banner
    console.print(f"Flower: http://127.0.0.1:{settings.flower_port}  (user {user})")
    _exec(settings, flower_argv(settings))
