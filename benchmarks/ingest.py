"""Ingest pool end to end: track() -> Redis Stream -> ingest workers -> rows committed.

    python benchmarks/ingest.py [--events 200000] [--baseline-events 3000] [--concurrency 2]

Without DATABASE_URL/REDIS_URL it starts a private embedded PostgreSQL + Redis
(appendfsync always) in a temporary QUANTPIPE_HOME, creates a fresh database,
migrates it, and stops it all at the end. Measured in the same run:

- sustained throughput, fast path: a producer thread calls ``track_many`` (pipelined,
  chunks of 1,000) while ``--concurrency`` real ``celery worker -Q ingest`` processes
  run ``ingest.drain`` (kicked every 0.25 s, as beat would every 1 s); clock stops
  when the last event's row is committed;
- drain-only throughput: the same with the events already queued;
- baseline 1, one Celery task per event: ``ingest.record_event`` (same validation
  and ON CONFLICT writes, one message + one transaction per event), same workers;
- baseline 2, one insert+commit per event: the same write path called in-process,
  one transaction per event;
- track() latency p50/p99 (sync client and async client), get_profile p99 cached
  and uncached;
- the floor (benchmarks/ingest_floor.py): the same encoded entries XADDed in pipelines plus
  one COPY of the same rows into a bare table, no logic.
The fast path's rows for a set of users are asserted equal to the slow path's (one event per
transaction) after each run. Goals (issues 3, 16): >= 50,000 events/s, >= 20x the better
baseline, >= 0.5x the floor, track p99 <= 1 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest_cpu import CpuMeter  # noqa: E402
from benchmarks.ingest_floor import assert_same, floor, snapshot  # noqa: E402

ENTITIES = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META", "GOOG", "BRK.B", "JPM", "V", "AMD", "NFLX"]
ACTIONS = ["view", "view", "search", "analyze", "trade", "alert", "watchlist_add"]


def _events(n: int, users: int, seed: int, stamped: bool = False) -> list[dict]:
    """Events; ``stamped``: with their event_id and ts fixed here, so the fast path, the slow path
    and the floor get the very same events."""
    rng = np.random.default_rng(seed)
    u = rng.integers(1, users + 1, n)
    e = rng.integers(0, len(ENTITIES), n)
    a = rng.integers(0, len(ACTIONS), n)
    out = [{"user_id": int(u[i]), "entity_id": ENTITIES[e[i]], "action": ACTIONS[a[i]]} for i in range(n)]
    if stamped:
        from workers.ingestion.events import uuid7

        t0 = time.time() - 7200
        for i, ev in enumerate(out):
            ev.update(event_id=str(uuid7()), ts=t0 + i * 1e-3)
    return out


def _count(engine) -> int:
    from sqlalchemy import text

    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM ingest_events")).scalar_one()


def _wait_rows(engine, target: int, timeout: float, kick=None) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _count(engine) >= target:
            return time.perf_counter()
        if kick:
            kick()
        time.sleep(0.1)
    raise TimeoutError(f"only {_count(engine)} of {target} rows after {timeout}s")


class Workers:
    def __init__(self, concurrency: int):
        from workers.app import app, load_pools

        load_pools(["ingest"])  # this process sends ingest tasks as task objects

        self.app = app
        self.hostname = f"bench-ingest@{uuid.uuid4().hex[:6]}"
        log = Path(os.environ.get("QUANTPIPE_LOG_DIR", "/tmp")) / "bench-ingest-worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "ingest", "-n", self.hostname,
             "--concurrency", str(concurrency), "--loglevel", "WARNING", "--without-mingle", "--without-gossip"],
            cwd=ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while not app.control.ping(destination=[self.hostname], timeout=0.5):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"benchmark worker did not start; see {log}")

    def kick(self) -> None:
        self.app.tasks["ingest.drain"].apply_async(expires=2)

    def wait_idle(self, timeout: float = 60) -> None:
        """Until no drain runs (a drain lingers briefly after the stream empties): a pre-queued run
        must not be consumed while it is being queued."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active = self.app.control.inspect(destination=[self.hostname], timeout=1.0).active() or {}
            reserved = self.app.control.inspect(destination=[self.hostname], timeout=1.0).reserved() or {}
            if not any(active.values()) and not any(reserved.values()):
                return
            time.sleep(0.2)
        raise TimeoutError("ingest workers did not become idle")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def _reset(engine, redis_client) -> None:
    from sqlalchemy import text

    with engine.begin() as c:
        c.execute(text("TRUNCATE ingest_events, ingest_interests"))
    redis_client.delete("shadowwatch:events")
    from workers.ingestion.stream import ensure_group

    ensure_group(redis_client)


PRODUCER_RATE: dict[str, float] = {}  # track_many rate of the producer thread in each run
CPU: dict[str, dict[str, float]] = {}  # µs of CPU per event of each process group in each run
METER: list = []  # the CpuMeter of the run's servers and workers
SNAPSHOTS: dict[str, tuple] = {}  # the checked users' rows after each fast-path run
CHECKED_USERS: list[str] = []


def sustained(sw, workers: Workers, events: list[dict], preload: bool) -> float:
    engine = sw.engine
    _reset(engine, sw.redis)
    last_kick = [0.0]

    def kick():
        if time.monotonic() - last_kick[0] > 0.25:
            workers.kick()
            last_kick[0] = time.monotonic()

    def produce():
        for i in range(0, len(events), 1000):
            sw.track_many(events[i:i + 1000])

    done = threading.Event()

    def produce_all():
        p0 = time.perf_counter()
        produce()
        PRODUCER_RATE["preload" if preload else "sustained"] = len(events) / (time.perf_counter() - p0)
        done.set()

    if preload:
        workers.wait_idle()
        _reset(engine, sw.redis)
        produce_all()
        cpu0 = METER[0].take()  # the drain's CPU only: the producer ran before it
        t0 = time.perf_counter()
    else:
        cpu0 = METER[0].take()
        t0 = time.perf_counter()
        producer = threading.Thread(target=produce_all)
        producer.start()
    # Entries are XACKed+XDELed only after their batch COMMITs, so an empty stream with nothing
    # pending (after the producer finished) means every row is committed. Polling Redis keeps the
    # clock free of count(*) scans; the row count is checked once at the end.
    from workers.ingestion.stream import lag

    deadline = time.monotonic() + 600
    while True:
        kick()
        state = lag(sw.redis)
        if done.is_set() and state["queued"] == 0 and state["pending"] == 0:
            t1 = time.perf_counter()
            CPU["preload" if preload else "sustained"] = METER[0].per_event(cpu0, METER[0].take(), len(events))
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream not drained: {state}")
        time.sleep(0.02)
    if not preload:
        producer.join()
    rows = _count(engine)
    if rows != len(events):
        raise AssertionError(f"{rows} rows committed for {len(events)} events")
    SNAPSHOTS["preload" if preload else "sustained"] = snapshot(engine, CHECKED_USERS)
    return len(events) / (t1 - t0)


def baseline_celery(sw, workers: Workers, events: list[dict]) -> float:
    engine = sw.engine
    _reset(engine, sw.redis)
    built = [sw.build(**e) for e in events]
    task = workers.app.tasks["ingest.record_event"]
    t0 = time.perf_counter()
    for e in built:
        task.apply_async(args=[e])
    t1 = _wait_rows(engine, len(built), 600)
    return len(built) / (t1 - t0)


def baseline_insert_commit(sw, events: list[dict]) -> float:
    """The slow path: one transaction per event through the same write. Its rows for the checked
    users are what every fast-path run must have written (asserted)."""
    from workers.ingestion.batch import write_batch

    _reset(sw.engine, sw.redis)
    built = [sw.build(**e) for e in events]
    t0 = time.perf_counter()
    for e in built:
        write_batch(sw.engine, [e], [], sw.half_life_seconds)
    rate = len(built) / (time.perf_counter() - t0)
    slow = snapshot(sw.engine, CHECKED_USERS)
    if not slow[0]:
        raise AssertionError("the slow path wrote no events of the checked users")
    for run, fast in SNAPSHOTS.items():
        assert_same(fast, slow, run)
    return rate


def checked_users(events: list[dict], at_least: int) -> list[dict]:
    """The first users (by id) whose events add up to ``at_least``; returns those events."""
    per: dict[int, int] = {}
    for e in events:
        per[e["user_id"]] = per.get(e["user_id"], 0) + 1
    total = 0
    for u in sorted(per):
        CHECKED_USERS.append(str(u))
        total += per[u]
        if total >= at_least:
            break
    chosen = set(int(u) for u in CHECKED_USERS)
    return [e for e in events if e["user_id"] in chosen]


def track_latency(sw, n: int) -> tuple[np.ndarray, np.ndarray]:
    evs = _events(n, 500, 11)
    lat = np.empty(n)
    for i, e in enumerate(evs):
        t0 = time.perf_counter()
        sw.track(**e)
        lat[i] = time.perf_counter() - t0

    async def run_async():
        from shadowwatch import ShadowWatch

        asw = ShadowWatch(sw.database_url, sw.redis_url, sw.license_key)
        out = np.empty(n)
        await asw.track(**evs[0])  # connect, load the script
        for i, e in enumerate(evs):
            t0 = time.perf_counter()
            await asw.track(**e)
            out[i] = time.perf_counter() - t0
        await asw.close()
        return out

    return lat * 1000, asyncio.run(run_async()) * 1000


def profile_latency(sw, users: list[int], reps: int) -> tuple[np.ndarray, np.ndarray]:
    from workers.ingestion.cache import user_keys

    uncached, cached = [], []
    for _ in range(reps):
        for u in users:
            sw.cache.delete(*user_keys(u))
            t0 = time.perf_counter()
            sw.get_profile(u)
            uncached.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            sw.get_profile(u)
            cached.append(time.perf_counter() - t0)
    return np.asarray(uncached) * 1000, np.asarray(cached) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="events in each throughput run")
    ap.add_argument("--baseline-events", type=int, default=1000, help="events in each baseline run")
    ap.add_argument("--concurrency", type=int, default=2, help="ingest worker processes")
    ap.add_argument("--latency-samples", type=int, default=5000)
    args = ap.parse_args()

    from tests import scratch

    env = scratch.start("qp_bench_ingest")
    workers = None
    try:
        from workers.ingestion import licenses
        from shared_models.settings import get_settings
        from shadowwatch import ShadowWatchSync

        s = get_settings()
        if not (Path(s.home) / licenses.PRIVATE_FILE).exists():
            licenses.generate_keypair(Path(s.home))
        key = licenses.issue(licenses.load_private_key(s), company="bench", tier="prod", events=10**9, days=1)
        sw = ShadowWatchSync(license_key=key)
        events = _events(args.events, 2000, 1, stamped=True)
        slow_events = checked_users(events, args.baseline_events)
        base_events = _events(args.baseline_events, 2000, 2)
        print(f"ingest benchmark: {args.events:,} events per throughput run, {args.baseline_events:,} per baseline, "
              f"{args.concurrency} worker process(es), batch {s.ingest.batch_size}, {os.cpu_count()} CPUs")
        built = [sw.build(**e) for e in events]
        floors = [floor(sw, built)]  # before the runs (fresh AOF) and after them: the better one counts
        workers = Workers(args.concurrency)
        from shared_models import embedded

        state = embedded.read_state(Path(s.home))
        METER.append(CpuMeter({"producer": os.getpid(), "workers": workers.proc.pid,
                               "postgres": state.postgres_pid, "redis": state.redis_pid}))
        workers.kick()
        time.sleep(1.0)
        fast = sustained(sw, workers, events, preload=False)
        drain_only = sustained(sw, workers, events, preload=True)
        b_celery = baseline_celery(sw, workers, base_events)
        b_insert = baseline_insert_commit(sw, slow_events)
        print(f"fast-path rows of {len(CHECKED_USERS)} users ({len(slow_events):,} events) equal the slow path's "
              f"(runs: {', '.join(SNAPSHOTS)})")
        floors.append(floor(sw, built))
        fl = max(floors, key=lambda f: f["floor"])
        best = max(b_celery, b_insert)
        print(f"{'sustained track->committed':34s} {fast:12,.0f} events/s")
        print(f"{'  producer track_many during it':34s} {PRODUCER_RATE['sustained']:12,.0f} events/s")
        print(f"{'drain only (pre-queued)':34s} {drain_only:12,.0f} events/s")
        print(f"{'  producer track_many, preload':34s} {PRODUCER_RATE['preload']:12,.0f} events/s")
        for run, per in CPU.items():
            print(f"{'  CPU per event, ' + run:34s} {CpuMeter.line(per)}")
        print(f"{'baseline: Celery task per event':34s} {b_celery:12,.0f} events/s")
        print(f"{'baseline: insert+commit per event':34s} {b_insert:12,.0f} events/s")
        for when, f in zip(("before the runs", "after the runs"), floors):
            label = f"floor (XADD + COPY), {when}"
            print(f"{label:34s} {f['floor']:12,.0f} events/s (XADD {f['xadd']:,.0f}/s, COPY {f['copy']:,.0f}/s)")
        wf = max(floors, key=lambda f: f["indexed"])
        print(f"{'write floor (COPY with its indexes)':34s} {wf['indexed']:12,.0f} events/s (the same XADDs, COPY into "
              f"LIKE ingest_events INCLUDING ALL {wf['copy_indexed']:,.0f}/s; sustained / it: {fast / wf['indexed']:.3f})")
        print(f"goal >= 50,000 events/s sustained: {'met' if fast >= 50_000 else 'NOT met'} ({fast:,.0f})")
        before = _count(sw.engine)
        sync_lat, async_lat = track_latency(sw, args.latency_samples)
        for name, lat in (("track() sync", sync_lat), ("track() async", async_lat)):
            print(f"{name:34s} p50 {np.percentile(lat, 50):.3f} ms  p99 {np.percentile(lat, 99):.3f} ms "
                  f"(goal p99 <= 1 ms: {'met' if np.percentile(lat, 99) <= 1 else 'NOT met'})")
        _wait_rows(sw.engine, before + args.latency_samples * 2, 300, workers.kick)
        users = sorted({e["user_id"] for e in events})[:200]
        unc, cac = profile_latency(sw, users, 2)
        print(f"{'get_profile uncached':34s} p50 {np.percentile(unc, 50):.3f} ms  p99 {np.percentile(unc, 99):.3f} ms")
        print(f"{'get_profile cached (RedisCache)':34s} p50 {np.percentile(cac, 50):.3f} ms  "
              f"p99 {np.percentile(cac, 99):.3f} ms  (uncached/cached p99 = "
              f"{np.percentile(unc, 99) / np.percentile(cac, 99):.1f}x)")
        sw.close()
        print(f"ratio ingest_vs_baseline = {fast / best:.1f} (goal >= 20)")
        print(f"ratio ingest_vs_floor = {fast / fl['floor']:.3f} (goal >= 0.5)")
    finally:
        if workers is not None:
            workers.stop()
        env.close()


if __name__ == "__main__":
    main()
