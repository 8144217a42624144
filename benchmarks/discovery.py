"""Discovery benchmark: a full scan of every loaded politician, every analysis, on real workers.

    python benchmarks/discovery.py

Sets up its own embedded PostgreSQL + Redis (or uses DATABASE_URL/REDIS_URL with a
fresh database), loads all of data/congress and every daily price file plus GSPC
(setup, not timed), then times the real thing twice in the same process:

- baseline: ONE discovery worker process (``--concurrency 1``) runs the chord
  ``tasks.scan_chord``: ``group(scan_cross, scan_politician x N) | scan_finish``;
- two workers' worth: ONE worker with ``--concurrency 2`` (two processes) runs it again
  after the findings are truncated, so both runs write the same rows.

Each worker runs the chord twice, findings truncated before each: "cold", its first scan
(each pool process imports the analyses, ~0.7 s of numpy/pandas/scipy/statsmodels/networkx,
at its first task: the pool stays at a bare worker's memory until then, item 5), and "warm",
the next one — what a long-running worker's daily scan costs, and what the floor (read in a
process that has those modules imported) is compared with. Both are printed; the goals are
checked on the warm 2-process scan.

- floor (issue #16 item 4): the reads a scan cannot avoid, with nothing else: every
  politician's trades and the closes of its symbols' windows read once (the scan's
  own ``load_trades`` / ``load_closes``, parsed to arrays) plus the benchmark index,
  on 2 connections (two threads), like the 2-process scan. Run before the scans and
  after them; the faster run is the floor.

Prints wall seconds of each run, the findings written and a digest of their content
(every scan must write the same findings, value for value: asserted; ``--digest HEX``
also asserts them equal to a digest printed by another tree, e.g. main's slow path),
and as its last line
``ratio discovery_scan_vs_floor = warm 2-process wall / floor wall (goal <= 3)``.
Goals: <= 3x the floor, and <= 5 s with 2 processes (warm) on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = 3.0
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


def timed_scan(concurrency: int, limit: int | None = None, scans: int = 2) -> list[tuple[float, dict]]:
    """``scans`` full scans on one fresh worker, findings truncated before each: [(wall, answer)],
    the first cold (its processes import the analyses), the others warm."""
    from sqlalchemy import text

    from shared_models.db import get_engine
    from tests.support import WorkerProcess
    from workers.discovery import tasks

    ids = tasks.politician_ids()[:limit]
    runs = []
    with WorkerProcess("discovery", concurrency=concurrency, name=f"bench{concurrency}"):
        for _ in range(scans):
            with get_engine().begin() as c:
                c.execute(text(f"TRUNCATE {FINDINGS}"))
            t0 = time.perf_counter()
            # follow_parents=False: do not poll all N header results on every interval (client CPU on a 2-core box)
            out = tasks.scan_chord(ids).apply_async().get(timeout=900, follow_parents=False)
            wall = time.perf_counter() - t0
            with get_engine().connect() as c:
                out["rows"] = {t.strip(): c.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                               for t in FINDINGS.split(",")}
            out["digest"] = findings_digest()
            runs.append((wall, out))
    return runs


def findings_digest() -> str:
    """sha256 of every finding's content (all columns but ids and timestamps), rows sorted: two runs with
    the same digest wrote the same findings set, value for value (a digest from main's code is the slow path's)."""
    import hashlib

    from sqlalchemy import text

    from shared_models.db import get_engine

    h = hashlib.sha256()
    with get_engine().connect() as c:
        for t in (x.strip() for x in FINDINGS.split(",")):
            cols = c.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = :t "
                                  "AND column_name <> 'id' AND data_type NOT LIKE 'timestamp%' "
                                  "ORDER BY column_name"), {"t": t}).scalars().all()
            rows = c.execute(text(f"SELECT row_to_json(x)::text FROM (SELECT {', '.join(cols)} FROM {t}) x")).scalars()
            for r in sorted(rows):
                h.update(f"{t}\t{r}\n".encode())
    return h.hexdigest()[:16]


def read_floor(threads: int = 2, limit: int | None = None) -> tuple[float, int, int]:
    """Every politician's trades and its symbols' closes read once (the scan's reads, nothing else)."""
    from concurrent.futures import ThreadPoolExecutor

    from shared_models.db import unit_of_work
    from workers.discovery import scan, tasks

    ids = tasks.politician_ids()[:limit]

    def one(chunk: list[str]) -> tuple[int, int]:
        n_trades = n_closes = 0
        with unit_of_work() as s:
            scan.load_market(s)
            for pid in chunk:
                trades = scan.load_trades(s, pid)
                n_trades += len(trades)
                if not trades.empty:
                    closes = scan.load_closes(s, scan._windows(trades, "transaction_date", scan.PRICE_LOOKBACK_DAYS,
                                                               scan.PRICE_LOOKAHEAD_DAYS))
                    n_closes += sum(len(d) for d, _ in closes.values())
        return n_trades, n_closes

    scan._MARKET_CACHE.clear()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(one, [ids[i::threads] for i in range(threads)]))
    wall = time.perf_counter() - t0
    return wall, sum(p[0] for p in parts), sum(p[1] for p in parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=None, help="cost growth: comma-separated politician counts (the first N "
                    "in key order); runs only the 2-process scan and the floor at each size")
    ap.add_argument("--digest", default=None, help="the findings digest the scans must write (from another tree)")
    args = ap.parse_args()
    from tests import scratch

    env = scratch.start("qp_bench_discovery", migrate=False)
    os.environ["QP_TEST_LOG_DIR"] = str(env.home / "logs")
    try:
        load_data()
        if args.sizes:
            for n in (int(x) for x in args.sizes.split(",")):
                floor_n = read_floor(limit=n)
                (cold, _), (wall, out) = timed_scan(2, n)
                print(f"size {n} politicians ({floor_n[1]} trades, {floor_n[2]} closes): floor {floor_n[0]:.2f} s, "
                      f"2-process scan cold {cold:.1f} s / warm {wall:.1f} s, {sum(out['rows'].values())} findings, "
                      f"ratio (warm) {wall / floor_n[0]:.2f}; load {os.getloadavg()[0]:.2f}")
            return
        floors = [read_floor()]
        print(f"floor: read every politician's trades + closes once: {floors[0][0]:6.2f} s "
              f"({floors[0][1]} trades, {floors[0][2]} closes)")
        scans = {}
        for conc, label in ((1, "baseline  1 worker process "), (2, "candidate 2 worker processes")):
            scans[conc] = timed_scan(conc)
            for (wall, out), kind in zip(scans[conc], ("cold", "warm")):
                print(f"{label} {kind}: {wall:6.1f} s wall  {out}")
        for wall, out in scans[1] + scans[2]:
            assert (out["rows"], out["digest"]) == (scans[1][0][1]["rows"], scans[1][0][1]["digest"]), \
                "every scan must write the same findings"
            assert args.digest is None or out["digest"] == args.digest, f"findings differ from {args.digest}"
        one, two, two_cold = scans[1][1][0], scans[2][1][0], scans[2][0][0]
        floors.append(read_floor())
        print(f"floor, again after the scans: {floors[1][0]:6.2f} s")
        floor = min(f[0] for f in floors)
        from shared_models import discoveries
        from shared_models.db import session_factory

        with session_factory()() as s:
            for e in discoveries.experiments(s):
                m = e["metrics"]
                print(f"experiment {e['parameters']['label']}: alpha {m['annualised_alpha']:+.3f}/yr "
                      f"t={m['alpha_t_stat']:.2f} beta={m['beta']:.2f} positions={m['positions']} "
                      f"days={m['days']} deployment_ready={e['deployment_ready']}")
        print(f"1-process / 2-process wall (warm): {one / two:.2f}x; 2-process scan warm {two:.1f} s (goal <= 5 s), "
              f"cold {two_cold:.1f} s ({two_cold / floor:.2f}x the floor)")
        print(f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"ratio discovery_scan_vs_floor = {two / floor:.2f} (goal <= {GOAL:g})")
    finally:
        env.close()


if __name__ == "__main__":
    main()
