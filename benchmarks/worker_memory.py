"""Resident memory of each pool's worker against a bare Celery worker of the same app.

    python benchmarks/worker_memory.py [--concurrency 1] [--repeat 1]

Starts its own servers and a throwaway database (``tests.scratch``), then, one
worker at a time (so they do not compete for the cores while they import):

- bare: ``celery worker`` of an app with quantpipe's configuration and task class
  but no task module (:data:`bare`): the floor every worker pays for Celery, kombu,
  redis, SQLAlchemy and our settings;
- one ``quantpipe`` worker per pool, started as compose and ``quantpipe worker``
  start it (``celery -A workers.app worker -Q <pool>``); its ``<pool>.ping`` is
  sent by name and must come back from that worker before memory is read.

RSS and USS of the parent and of each prefork child are read after the worker
answers. Prints one ``ratio worker_rss_<pool>_vs_bare = X (goal <= 1.5)`` line per
pool: (parent + children RSS) / (bare parent + children RSS), same run, same machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = 1.5
MiB = 2**20


def _bare_app():
    from celery import Celery

    from workers.base import PipelineTask

    app = Celery("quantpipe", task_cls=PipelineTask)
    app.config_from_object("celeryconfig")
    return app


def __getattr__(name: str):
    if name == "bare":  # ``celery -A benchmarks.worker_memory:bare``; built lazily so --help stays cheap
        return _bare_app()
    raise AttributeError(name)


def _memory(pid: int) -> dict:
    import psutil

    parent = psutil.Process(pid)
    children = parent.children(recursive=True)

    def one(p):
        info = p.memory_full_info()
        return info.rss / MiB, info.uss / MiB

    prss, puss = one(parent)
    kids = [one(c) for c in children]
    return {"parent_rss": prss, "parent_uss": puss, "children": len(kids),
            "child_rss": sum(k[0] for k in kids), "child_uss": sum(k[1] for k in kids)}


HEAVY = ("numpy", "pandas", "scipy", "statsmodels", "networkx", "talib", "cryptography",
         "workers.shadow.evaluation", "shared_models.shadow_watch")


def _heavy_modules(pool: str | None) -> list[str]:
    """Heavy libraries a worker of ``pool`` has imported (a fresh interpreter importing what the worker does)."""
    from workers.routing import POOL_PACKAGES

    imports = f"import workers.app, {POOL_PACKAGES[pool]}.tasks" if pool else "import celeryconfig, workers.base"
    probe = f"import sys; {imports}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    return [m for m in out.stdout.strip().split(",") if m] if out.returncode == 0 else ["probe failed"]


def measure(app_spec: str, pool: str | None, concurrency: int, log_dir: Path) -> dict:
    from workers.app import app

    name = f"{pool or 'bare'}@bench-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "celery", "-A", app_spec, "worker", "-n", name, "--concurrency",
            str(concurrency), "--pool", "prefork", "--loglevel", "WARNING", "--without-mingle",
            "--without-gossip", "-E"]
    if pool:
        argv[argv.index("worker") + 1:argv.index("worker") + 1] = ["-Q", pool]
    log = open(log_dir / f"{name}.log", "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        while not app.control.ping(destination=[name], timeout=0.5):
            if proc.poll() is not None or time.monotonic() - t0 > 300:
                raise RuntimeError(f"{name} did not start; see {log_dir / (name + '.log')}")
        ready = time.monotonic() - t0
        if pool:
            reply = app.signature(f"{pool}.ping").apply_async().get(timeout=60)
            if reply.get("hostname") != name:
                raise RuntimeError(f"{pool}.ping answered by {reply.get('hostname')}, not {name}")
        time.sleep(1.0)  # let the child settle after its first task
        out = _memory(proc.pid)
        out["ready_s"] = ready
        return out
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrency", type=int, default=1, help="prefork children per worker")
    ap.add_argument("--repeat", type=int, default=1, help="measure each worker N times, keep the median")
    args = ap.parse_args()
    from tests import scratch

    env = scratch.start("qp_bench_workermem")
    try:
        from workers.routing import POOLS

        log_dir = env.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}"
              f"  (concurrency {args.concurrency})")
        rows: dict[str, dict] = {}
        for label, spec, pool in [("bare", "benchmarks.worker_memory:bare", None)] + \
                                 [(p, "workers.app", p) for p in POOLS]:
            runs = sorted((measure(spec, pool, args.concurrency, log_dir) for _ in range(args.repeat)),
                          key=lambda r: r["parent_rss"] + r["child_rss"])
            rows[label] = runs[len(runs) // 2]
            rows[label]["modules"] = _heavy_modules(pool)
        print(f"{'worker':<10}{'ready s':>8}{'parent RSS':>12}{'child RSS':>11}{'parent USS':>12}"
              f"{'child USS':>11}  MiB")
        for label, r in rows.items():
            print(f"{label:<10}{r['ready_s']:>8.1f}{r['parent_rss']:>12.1f}{r['child_rss']:>11.1f}"
                  f"{r['parent_uss']:>12.1f}{r['child_uss']:>11.1f}")
        for label, r in rows.items():
            print(f"  {label}: {', '.join(r['modules']) or '-'}")
        base = rows["bare"]["parent_rss"] + rows["bare"]["child_rss"]
        for pool in POOLS:
            r = rows[pool]
            print(f"ratio worker_rss_{pool}_vs_bare = {(r['parent_rss'] + r['child_rss']) / base:.2f} "
                  f"(goal <= {GOAL})")
        print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
