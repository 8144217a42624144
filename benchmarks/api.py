"""HTTP API throughput and latency against the database floor of the same reads.

    python benchmarks/api.py [--seconds 10] [--connections 32] [--workers 2] [--no-discovery]

Sets up its own servers and throwaway database (tests/scratch.py), loads the shipped
congress data and prices and runs the real discovery scan on a real worker (setup,
not timed; ``--no-discovery`` skips it), registers a champion and three challengers
with 1,000 trades each, creates an API key, and starts ``quantpipe api`` (uvicorn,
``--workers``). Then, from a second process, for each endpoint:

- API: ``--connections`` concurrent keep-alive connections (httpx, asyncio) call
  ``GET /api/v1/discoveries/recent`` and ``GET /shadow/status`` for ``--seconds``;
- floor: the same number of threads, each on its own raw psycopg2 connection, run the
  exact SQL statements one such request executes (captured from the read functions
  the endpoint calls), nothing else: no HTTP, no auth, no JSON.

Prints requests/s and p50/p99 of both, the API processes' CPU per request, and
``ratio NAME = VALUE (goal …)`` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENDPOINTS = {"discoveries_recent": "/api/v1/discoveries/recent?limit=10",
             "shadow_status": "/shadow/status"}
GOAL_RPS = 0.33   # the API serves at least a third of what the bare queries allow
GOAL_P99 = 3.0    # and its p99 is at most 3x the bare queries' p99


def _q(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(0.99 * len(xs)))]


# -- the second process -------------------------------------------------------------------------------------------
async def _http(url: str, headers: dict, connections: int, seconds: float) -> dict:
    import httpx

    lat: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
        await client.get(url)  # warm
        deadline = time.perf_counter() + seconds

        async def worker():
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await client.get(url)
                except httpx.TransportError:  # counted (a reset connection under load), not a crashed run
                    errors += 1
                    continue
                if r.status_code == 200:
                    lat.append(time.perf_counter() - t0)
                else:
                    errors += 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        wall = time.perf_counter() - t0
    return {"n": len(lat), "wall": wall, "lat": lat, "errors": errors}


def _floor(dsn: dict, statements: list[tuple[str, object]], connections: int, seconds: float) -> dict:
    import psycopg2

    conns = [psycopg2.connect(**dsn) for _ in range(connections)]  # as the API role, like the API
    for c in conns:
        c.autocommit = True
    lat: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(conn):
        cur = conn.cursor()
        mine = []
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            for sql, params in statements:
                cur.execute(sql, params)
                cur.fetchall()
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    return {"n": len(lat), "wall": wall, "lat": lat, "errors": 0}


def _client_process(job: dict, out) -> None:
    try:
        if job["kind"] == "http":
            out.put(asyncio.run(_http(job["url"], job["headers"], job["connections"], job["seconds"])))
        else:
            out.put(_floor(job["dsn"], job["statements"], job["connections"], job["seconds"]))
    except BaseException as exc:  # noqa: BLE001 - report to the parent instead of leaving it waiting
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def run_in_second_process(job: dict) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_client_process, args=(job, q))
    p.start()
    res = q.get(timeout=job["seconds"] * 3 + 120)
    p.join(30)
    if "error" in res:
        raise RuntimeError(f"{job['kind']} load process failed: {res['error']}")
    return res


# -- setup in this process ----------------------------------------------------------------------------------------
def captured_statements(fn) -> list[tuple[str, object]]:
    """The SQL (with parameters) ``fn(session)`` executes, for the floor to replay verbatim."""
    from sqlalchemy import event

    from api.db import engine, read_session

    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    event.listen(engine(), "before_cursor_execute", capture)
    try:
        with read_session() as session:
            fn(session)
    finally:
        event.remove(engine(), "before_cursor_execute", capture)
    return [(s, p) for s, p in seen if not s.lstrip().upper().startswith(("SELECT PG_", "SELECT 1"))]


def setup_shadow(rng) -> None:
    from datetime import datetime, timedelta, timezone

    from shared_models.db import unit_of_work
    from shared_models.settings import get_settings
    from workers.shadow import registry

    sh = get_settings().shadow
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with unit_of_work() as s:
        for i, name in enumerate(["champion", "chal_a", "chal_b", "chal_c"]):
            m, _ = registry.deploy(s, name, "momentum", champion=(i == 0))
            r = 0.0005 * (1 + i) + 0.02 * rng.standard_normal(1000)
            rows = [{"trade_id": f"{name}{k}", "opened_at": t0 + timedelta(minutes=k),
                     "closed_at": t0 + timedelta(minutes=k, seconds=30), "return": float(x), "pnl": float(x) * 1e4}
                    for k, x in enumerate(r)]
            registry.record_trades(s, m, rows, source="bench", min_trades=sh.min_trades, interval=sh.check_interval,
                                   horizon=sh.max_trades)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the API server and its worker processes so far (how much work a request costs,
    which the load on a shared machine changes less than it changes the rates)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--port", str(port), "--workers", str(workers),
                             "--log-level", "warning"], cwd=ROOT, env=os.environ.copy(),
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(url + "/openapi.json", timeout=1)
            return proc, url
        except httpx.TransportError:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            time.sleep(0.1)
    raise TimeoutError("quantpipe api did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-discovery", action="store_true", help="Skip loading data and the discovery scan.")
    args = ap.parse_args()
    from tests import scratch

    env = scratch.start("qp_bench_api", migrate=True)
    os.environ["QP_TEST_LOG_DIR"] = str(env.home / "logs")
    (env.home / "logs").mkdir(parents=True, exist_ok=True)
    try:
        _run(args, env)
    finally:
        env.close()


def _run(args, env) -> None:
    import numpy as np
    from sqlalchemy.engine import make_url

    from api.db import api_database_url
    from api.keys import create_key
    from shared_models.db import unit_of_work
    from shared_models.settings import get_settings

    if not args.no_discovery:
        from benchmarks.discovery import load_data, timed_scan

        load_data()
        wall, out = timed_scan(2)
        print(f"setup: discovery scan {wall:.1f} s, {out['rows']}")
    setup_shadow(np.random.default_rng(3))
    with unit_of_work() as s:
        _, key = create_key(s, "bench", ["read"], created_by="benchmarks/api.py")

    from shared_models import discoveries
    from workers.shadow.dashboard import overview

    floors = {"shadow_status": captured_statements(lambda s: overview(s, get_settings()))}
    if hasattr(discoveries, "MAX_LIMIT"):  # the paginated read layer the endpoint calls
        floors["discoveries_recent"] = captured_statements(lambda s: discoveries.recent_discoveries(s, limit=11))
    url = make_url(api_database_url())
    dsn = {**url.translate_connect_args(username="user", database="dbname"), **dict(url.query)}
    log = env.home / "logs" / "api-bench.log"
    proc, url = start_api(args.workers, log)
    try:
        import httpx

        paths = set(httpx.get(url + "/openapi.json").json()["paths"])
        print(f"load: {args.connections} connections from a second process, {args.seconds:.0f} s per run, "
              f"API with {args.workers} uvicorn worker(s); load average {os.getloadavg()[0]:.2f}")
        for name, path in ENDPOINTS.items():
            if path.split("?")[0] not in paths or name not in floors:
                print(f"{name}: endpoint or read layer not available in this build: skipped")
                continue
            cpu0 = _cpu_seconds(proc.pid)
            api = run_in_second_process({"kind": "http", "url": url + path, "connections": args.connections,
                                         "seconds": args.seconds, "headers": {"Authorization": f"Bearer {key}"}})
            api_cpu = _cpu_seconds(proc.pid) - cpu0
            floor = run_in_second_process({"kind": "floor", "dsn": dsn, "statements": floors[name],
                                           "connections": args.connections, "seconds": args.seconds})
            a_rps, f_rps = api["n"] / api["wall"], floor["n"] / floor["wall"]
            (a50, a99), (f50, f99) = _q(api["lat"]), _q(floor["lat"])
            print(f"{name}: API {a_rps:8.0f} req/s  p50 {a50 * 1e3:6.1f} ms  p99 {a99 * 1e3:6.1f} ms  "
                  f"({api['errors']} non-200); API processes' CPU "
                  f"{api_cpu / max(1, api['n'] + api['errors']) * 1e3:.2f} ms per request")
            print(f"{name}: floor ({len(floors[name])} statement(s) on raw psycopg2) {f_rps:8.0f} req/s  "
                  f"p50 {f50 * 1e3:6.1f} ms  p99 {f99 * 1e3:6.1f} ms")
            print(f"ratio {name}_rps_vs_floor = {a_rps / f_rps:.3f} (goal >= {GOAL_RPS})")
            print(f"ratio {name}_p99_vs_floor = {a99 / f99:.3f} (goal <= {GOAL_P99})")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
