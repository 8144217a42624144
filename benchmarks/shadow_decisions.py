"""Promotion and rollback end to end against PostgreSQL, and a shadow worker's RSS.

    python benchmarks/shadow_decisions.py [--reps 20] [--n 5000] [--no-worker]

Without DATABASE_URL/REDIS_URL it starts a private embedded PostgreSQL + Redis in a
temporary QUANTPIPE_HOME, creates a fresh database, migrates it, and stops it all at
the end. The registry holds a champion with n trades; each repetition deploys a
better challenger with n trades (setup, not timed) and then times, in the same
process, on the same database:

- promotion decision end to end: one transaction that reads both series, runs the
  full evaluation (10,000 bootstrap resamples), stores the evaluation, swaps the
  roles under row locks, writes the history row, and COMMITs;
- rollback end to end: one transaction that finds the previous champion, swaps back,
  writes the history row and COMMITs;
- named baseline, the I/O floor: one transaction that reads the same two series and
  writes one history row, nothing else.

Then (unless --no-worker) a real ``celery worker -Q shadow`` runs ``--reps``
``shadow.evaluate`` tasks; its RSS (parent + pool child) is read before and after.
Goals: promotion <= 50 ms, rollback <= 100 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _trades(rng, n, mean, prefix):
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    r = mean + 0.02 * rng.standard_t(4, n) / np.sqrt(2)
    return [{"trade_id": f"{prefix}{i}", "opened_at": t0 + timedelta(minutes=i),
             "closed_at": t0 + timedelta(minutes=i, seconds=30), "return": float(x), "pnl": float(x) * 1e4}
            for i, x in enumerate(r)]


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    import os

    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _q(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(0.95 * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--no-worker", action="store_true")
    args = ap.parse_args()
    from tests import scratch

    env = scratch.start("qp_bench_shadow", migrate=False)
    try:
        _run(args, env.database_url)
    finally:
        env.close()


def _run(args, db_url: str) -> None:
    from sqlalchemy import select

    from shared_models import migrate
    from shared_models.db import dispose_engines, unit_of_work
    from shared_models.models.shadow import PromotionEvent
    from shared_models.settings import get_settings
    from workers.shadow import decisions, recording, registry
    from workers.shadow.evaluation import EvalConfig
    from workers.shadow.rollback import RollbackConfig

    migrate.upgrade(db_url)
    settings = get_settings()
    sh = settings.shadow
    EvalConfig.from_settings(settings).bounds()
    RollbackConfig.from_settings(settings).bounds()   # what a worker does at start-up
    rng = np.random.default_rng(7)
    kw = dict(min_trades=sh.min_trades, interval=sh.check_interval, horizon=sh.max_trades)
    with unit_of_work() as s:
        champ, _ = registry.deploy(s, "champ", "momentum", champion=True)
        recording.record_trades(s, champ, _trades(rng, args.n, 0.0005, "c"), source="bench", **kw)
    from sqlalchemy import text

    def backend():
        with unit_of_work() as s:
            return s.scalar(text("SELECT pg_backend_pid()"))

    pid = backend()   # one connection in the pool: every unit of work below runs on this backend
    promo, back, floor, cpu, server = [], [], [], [], 0.0
    for i in range(args.reps):
        with unit_of_work() as s:
            ch, _ = registry.deploy(s, f"chal{i}", "momentum")
            recording.record_trades(s, ch, _trades(rng, args.n, 0.003, f"s{i}-"), source="bench", **kw)
            ids = (champ.id, ch.id)
        b0, c0, t0 = _cpu(pid), time.process_time(), time.perf_counter()
        with unit_of_work() as s:
            out = decisions.evaluate_challenger(s, f"chal{i}", settings, auto_promote=True, actor="bench")
        promo.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        server += _cpu(pid) - b0
        assert out.decision == "APPROVED", out.message
        t0 = time.perf_counter()
        with unit_of_work() as s:
            decisions.rollback(s, actor="bench", reason="benchmark")
        back.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with unit_of_work() as s:   # the I/O floor: the same reads as the look, one history row
            registry.look_trades(s, ids[1], ids[0], args.n)
            s.add(PromotionEvent(event="manual", from_model_id=ids[0], to_model_id=ids[0], reason="floor",
                                 actor="bench"))
        floor.append(time.perf_counter() - t0)
    with unit_of_work() as s:   # the look's packed read gives, to the bit, what reading the rows one by one gives
        ch, _ = registry.deploy(s, "check", "momentum")
        recording.record_trades(s, ch, _trades(np.random.default_rng(99), args.n, 0.003, "k-"), source="bench", **kw)
        for fast, slow in zip(registry.look_trades(s, ch.id, champ.id, args.n),
                              registry.look_trades_reference(s, ch.id, champ.id, args.n)):
            assert all(np.array_equal(getattr(fast, f), getattr(slow, f), equal_nan=True)
                       for f in ("ret", "opened", "closed")) and fast.opportunity is slow.opportunity is None
        s.delete(ch)
    same_backend = backend() == pid
    with unit_of_work() as s:   # what was decided, without the timings: equal before and after a speed-up
        rows = s.execute(text("SELECT challenger_id, champion_id, n_trades, decision, score, metrics::text "
                              "FROM shadow_evaluations ORDER BY id")).all()
        rows += s.execute(text("SELECT event, from_model_id, to_model_id, reason, actor, metrics::text "
                               "FROM shadow_promotions ORDER BY id")).all()
        decided = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()[:16]
    with unit_of_work() as s:
        recorded = [e.elapsed_ms for e in s.scalars(select(PromotionEvent).where(PromotionEvent.event == "promote"))]
    (pm, p95), (rm, r95), (fm, f95) = _q(promo), _q(back), _q(floor)
    print(f"{args.reps} repetitions, {args.n} trades per model, {sh.n_bootstrap} resamples")
    print(f"promotion end to end (read+evaluate+write+commit): median {1000 * pm:6.1f} ms, p95 {1000 * p95:6.1f} ms"
          f"  (goal <= 50 ms; elapsed_ms recorded in history: median {statistics.median(recorded):.1f})")
    print(f"rollback end to end (+commit):                    median {1000 * rm:6.1f} ms, p95 {1000 * r95:6.1f} ms"
          f"  (goal <= 100 ms)")
    print(f"baseline I/O floor (same reads + one row + commit): median {1000 * fm:6.1f} ms")
    print(f"promotion CPU (less noisy than wall time on a shared machine): this process median {1000 * statistics.median(cpu):.1f} ms"
          + (f", its PostgreSQL backend {1000 * server / args.reps:.1f} ms per promotion (mean, clock ticks)"
             if same_backend else ", PostgreSQL backend not measured (the pool changed connection)"))
    print(f"decisions (evaluation and history rows, timings left out): sha256 {decided}")
    print(f"ratio promotion / floor: {pm / fm:.1f}x; rollback / floor: {rm / fm:.2f}x")
    print(f"ratio promotion_ms = {1000 * pm:.1f} (goal <= 50)")
    print(f"ratio rollback_ms = {1000 * rm:.1f} (goal <= 100)")
    if not args.no_worker:
        import psutil

        from tests.support import WorkerProcess
        from workers.shadow.tasks import evaluate

        def rss(w):
            return sum(psutil.Process(p).memory_info().rss for p in w.pids()) / 2 ** 20

        with unit_of_work() as s:
            for i in range(args.reps):
                ch, _ = registry.deploy(s, f"w{i}", "momentum")
                recording.record_trades(s, ch, _trades(rng, args.n, 0.0005, f"w{i}-"), source="bench", **kw)
        with WorkerProcess("shadow", concurrency=1) as w:
            evaluate.delay("champ").get(timeout=120)   # first task: imports done in the pool child
            before = rss(w)
            for i in range(args.reps):
                evaluate.delay(f"w{i}").get(timeout=120)
            after = rss(w)
        print(f"shadow worker RSS (parent + 1 pool child): {before:.0f} MiB after start-up, {after:.0f} MiB after "
              f"{args.reps} evaluations of {args.n}+{args.n} trades (ratio {after / before:.2f}x)")
    dispose_engines()


if __name__ == "__main__":
    main()
