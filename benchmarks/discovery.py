"""Discovery benchmark: a full scan of every loaded politician, every analysis, on real workers.

    python benchmarks/discovery.py

Sets up its own embedded PostgreSQL + Redis (or uses DATABASE_URL/REDIS_URL with a
fresh database), loads all of data/congress and every daily price file plus GSPC
(setup, not timed), then times the real thing twice in the same process:

- baseline: ONE discovery worker process (``--concurrency 1``) runs the chord
  ``group(scan_politician x N) | scan_network``;
- two workers' worth: ONE worker with ``--concurrency 2`` (two processes) runs it again
  after the findings are truncated, so both runs write the same rows.

Prints wall seconds of each run, the findings written, and the speed-up ratio
1-process / 2-process. Goal: <= 30 s wall on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FINDINGS = "pattern_discoveries, anomaly_detections, network_discoveries, model_experiments"


def load_data() -> tuple[int, int]:
    from sqlalchemy import text

    from shared_models import migrate
    from loaders.congress import load_congress
    from shared_models.db import get_engine
    from loaders.prices import load_prices

    migrate.upgrade(os.environ["DATABASE_URL"])
    engine = get_engine()
    t0 = time.perf_counter()
    load_prices(engine, [ROOT / "data/prices/daily", ROOT / "data/prices/benchmark/GSPC.csv.gz"])
    report = load_congress(engine, [ROOT / "data/congress"])
    with engine.connect() as c:
        bars = c.execute(text("SELECT count(*) FROM market_bars")).scalar()
    print(f"setup: {bars} bars, {report.trades_valid} trades, {report.politicians} politicians "
          f"loaded in {time.perf_counter() - t0:.1f} s (not timed below)")
    return bars, report.trades_valid


def timed_scan(concurrency: int) -> tuple[float, dict]:
    from sqlalchemy import text

    from shared_models.db import get_engine
    from tests.support import WorkerProcess
    from workers.discovery import tasks

    with get_engine().begin() as c:
        c.execute(text(f"TRUNCATE {FINDINGS}"))
    ids = tasks.politician_ids()
    with WorkerProcess("discovery", concurrency=concurrency, name=f"bench{concurrency}"):
        t0 = time.perf_counter()
        out = tasks.scan_chord(ids).apply_async().get(timeout=900)
        wall = time.perf_counter() - t0
    with get_engine().connect() as c:
        out["rows"] = {t.strip(): c.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in FINDINGS.split(",")}
    return wall, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args()
    from tests import scratch

    env = scratch.start("qp_bench_discovery", migrate=False)
    os.environ["QP_TEST_LOG_DIR"] = str(env.home / "logs")
    try:
        load_data()
        one, out1 = timed_scan(1)
        print(f"baseline  1 worker process : {one:6.1f} s wall  {out1}")
        two, out2 = timed_scan(2)
        print(f"candidate 2 worker processes: {two:6.1f} s wall  {out2}")
        assert out1["rows"] == out2["rows"], "both runs must write the same findings"
        print(f"ratio 1-process / 2-process wall time: {one / two:.2f}x   (goal: 2-process run <= 30 s)")
        from shared_models import discoveries
        from shared_models.db import session_factory

        with session_factory()() as s:
            for e in discoveries.experiments(s):
                m = e["metrics"]
                print(f"experiment {e['parameters']['label']}: alpha {m['annualised_alpha']:+.3f}/yr "
                      f"t={m['alpha_t_stat']:.2f} beta={m['beta']:.2f} positions={m['positions']} "
                      f"days={m['days']} deployment_ready={e['deployment_ready']}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
