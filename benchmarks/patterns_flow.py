"""The producer's share of a flow: PATTERN_PUBLISHED log row -> PUBLISH, on every path.

    python benchmarks/patterns_flow.py [--symbols N] [--repeat N]

The consumer's flow target is 100 ms end to end (seed 001); the producer's part is the time
from its ``PATTERN_PUBLISHED`` row (``integration_events.timestamp``, clock_timestamp() at the
log) to the PUBLISH of the event (the event's top-level ``timestamp``, set just before it is
sent). Both clocks are this machine's. A subscriber records every event.

Paths: ``test-event`` (``live_path.publish_detections``, what ``quantpipe patterns test-event``
runs), ``on_bar`` (``scanning.ingest_bar``, one symbol), ``on_bars`` (one universe tick of N
symbols, half of them as one transaction — the baseline — and half in units of ``--unit``
symbols: many events per unit), ``scan`` (``scanning.scan_symbol`` of a recent period).

Named baseline, the floor: a row logged through ``log_integration_event``, COMMIT, PUBLISH on a
warm connection — the least a durable log-then-publish can cost here. Goals: the single-event
paths within 2x the floor's median (a few ms on a quiet machine); the multi-event paths are
reported against the same floor (their events wait for the ones published before them).
Without DATABASE_URL/REDIS_URL it starts private embedded servers (stopped at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Subscriber(threading.Thread):
    def __init__(self, url: str):
        import redis

        super().__init__(daemon=True)
        self.sub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
        self.sub.subscribe("tickstock.events.patterns", "quantpipe.bench.floor")
        self.events: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            m = self.sub.get_message(timeout=0.1)
            if m and m["type"] == "message":
                ev = json.loads(m["data"])
                self.events[ev["flow_id"]] = ev["timestamp"]

    def wait_for(self, flows, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(f in self.events for f in flows):
            time.sleep(0.01)


def _latencies(engine, sub: Subscriber, flows: list[str]) -> list[float]:
    from sqlalchemy import text

    sub.wait_for(flows)
    with engine.connect() as c:
        logged = dict(c.execute(text(
            "SELECT flow_id::text, extract(epoch FROM timestamp) FROM integration_events "
            "WHERE checkpoint = 'PATTERN_PUBLISHED' AND flow_id = ANY(CAST(:f AS uuid[]))"), {"f": flows}).all())
    return [(sub.events[f] - float(logged[f])) * 1000 for f in flows if f in sub.events and f in logged]


def _floor(engine, redis_client, sub, n: int) -> list[float]:
    flows = []
    raw = engine.raw_connection()
    cur = raw.cursor()
    for _ in range(n):
        f = str(uuid.uuid4())
        cur.execute("SELECT log_integration_event(%s, 'pattern_detected', 'TickStockPL', 'PATTERN_PUBLISHED', "
                    "'quantpipe.bench.floor', 'FLOOR', 'Floor', 0.5, NULL, NULL)", (f,))
        raw.commit()
        redis_client.publish("quantpipe.bench.floor", json.dumps({"flow_id": f, "timestamp": time.time()}))
        flows.append(f)
    raw.close()
    return _latencies(engine, sub, flows)


def _flows_since(engine, t0, symbols=None) -> list[str]:
    from sqlalchemy import text

    with engine.connect() as c:
        return list(c.execute(text("SELECT flow_id::text FROM pattern_detections WHERE detected_at >= :t "
                                   "AND (CAST(:s AS text[]) IS NULL OR symbol = ANY(CAST(:s AS text[])))"),
                              {"t": t0, "s": symbols}).scalars())


def _now(engine):
    from sqlalchemy import text

    with engine.connect() as c:
        return c.execute(text("SELECT clock_timestamp()")).scalar()


def run(n_symbols: int, repeat: int, unit: int) -> None:
    import redis
    from datetime import datetime, timezone

    from benchmarks.patterns_live import PREV_DAY, _prepare
    from shared_models import migrate
    from shared_models.db import get_engine, redis_url
    from workers.patterns.detection import Detection
    from workers.patterns.live_path import publish_detections
    from workers.patterns.scanning import ingest_bar, ingest_bars, scan_symbol

    migrate.upgrade(os.environ["DATABASE_URL"])
    engine = get_engine(os.environ["DATABASE_URL"])
    r = redis.Redis.from_url(redis_url())
    new = _prepare(engine, n_symbols, PREV_DAY)
    sub = Subscriber(redis_url())
    sub.start()
    time.sleep(0.2)
    r.ping()
    out: dict[str, list[float]] = {"floor": _floor(engine, r, sub, repeat)}

    flows = []
    for i in range(repeat):
        det = Detection("BENCH", "Doji", "daily", datetime.now(timezone.utc), 0.85, 100.0, 0.0, 1000, 0, {})
        flows += [row[1] for row in publish_detections(engine, r, [det], 24).new]
    out["test-event"] = _latencies(engine, sub, flows)

    t0 = _now(engine)
    for s, bars in new.items():
        ingest_bar(engine, r, s, "1d", bars[0])
    out["on_bar"] = _latencies(engine, sub, _flows_since(engine, t0))

    # A universe tick, half of the symbols as one transaction (the baseline: how on_bars ran before
    # issue #13), the other half in units of ``unit`` symbols, each unit publishing after its COMMIT.
    names = list(new)
    whole, parts = names[:len(names) // 2], names[len(names) // 2:]
    t0 = _now(engine)
    ingest_bars(engine, r, "1d", {s: new[s][1] for s in whole}, unit_symbols=len(whole) or 1)
    out["on_bars-one-tx"] = _latencies(engine, sub, _flows_since(engine, t0))
    t0 = _now(engine)
    tick = time.perf_counter()
    ingest_bars(engine, r, "1d", {s: new[s][1] for s in parts}, unit_symbols=unit)
    tick_ms = (time.perf_counter() - tick) * 1000
    out["on_bars"] = _latencies(engine, sub, _flows_since(engine, t0))

    t0 = _now(engine)
    since = datetime(2021, 3, 1, tzinfo=timezone.utc)
    scanned = list(new)[:5]
    for s in scanned:
        scan_symbol(engine, r, s, "daily", since, incremental=False)
    out["scan"] = _latencies(engine, sub, _flows_since(engine, t0, scanned))
    sub.stop.set()

    floor50 = float(np.percentile(out["floor"], 50))
    print(f"{len(new)} symbols; events per path: " + ", ".join(f"{k} {len(v)}" for k, v in out.items()))
    for name, lat in out.items():
        if lat:
            print(f"{name:>10} log row -> PUBLISH: p50 {np.percentile(lat, 50):7.2f} ms  p99 "
                  f"{np.percentile(lat, 99):7.2f} ms  max {max(lat):7.2f} ms")
    print(f"on_bars: {len(whole)} symbols as one transaction, {len(parts)} in units of {unit} "
          f"({tick_ms:.1f} ms for the latter); load: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    for name, goal in (("test-event", 2.0), ("on_bar", 2.0), ("on_bars", None), ("scan", None)):
        if out[name]:
            v = float(np.percentile(out[name], 50)) / floor50
            goal_txt = f"goal <= {goal}" if goal else "reported: events of one unit publish in order"
            print(f"ratio patterns_flow_{name.replace('-', '_')}_p50_vs_floor = {v:.2f} ({goal_txt})")
    if out["on_bars"] and out["on_bars-one-tx"]:
        v = float(np.percentile(out["on_bars"], 99)) / float(np.percentile(out["on_bars-one-tx"], 99))
        print(f"ratio patterns_flow_on_bars_units_p99_vs_one_tx = {v:.2f} (goal <= 0.5)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=100, help="tickers for on_bar / on_bars (default 100)")
    ap.add_argument("--repeat", type=int, default=100, help="floor and test-event samples (default 100)")
    ap.add_argument("--unit", type=int, default=None,
                    help="symbols per on_bars transaction (default: PATTERNS_LIVE_UNIT_SYMBOLS' default)")
    args = ap.parse_args()
    from workers.patterns.scanning import LIVE_UNIT_SYMBOLS
    from tests import scratch

    env = scratch.start("qp_bench_flow")
    try:
        run(args.symbols, args.repeat, args.unit or LIVE_UNIT_SYMBOLS)
    finally:
        env.close()


if __name__ == "__main__":
    main()
