"""Ingest batch write on one connection: the current statement against the previous one.

    python benchmarks/ingest_write.py [--batches 12] [--batch-size 5000]

Isolates the PostgreSQL side of ``ingest.drain`` (no Redis, no Celery): each round writes one
fresh batch with ``store.write_events`` (current) and one with the previous form of the same
statement (baseline, run in the same process on the same database, alternating):

- baseline: parameters as psycopg2 ``ARRAY[...]`` expressions (one parse-tree constant per
  element) and action counts merged by a non-inlinable SQL function ``ingest_merge_counts``;
- current: parameters as PostgreSQL array text literals (one string each, parsed by array_in)
  and the merge written inline in the upsert.
Both include the erasure tombstone check and the writers' lock. Without DATABASE_URL it starts a
private embedded PostgreSQL in a temporary home.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ingest as bench  # noqa: E402  (benchmarks/ingest.py: the event generator)

MERGE_COUNTS = """
CREATE OR REPLACE FUNCTION ingest_merge_counts(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(k, coalesce((a ->> k)::bigint, 0) + coalesce((b ->> k)::bigint, 0)),
                    '{}'::jsonb)
    FROM (SELECT jsonb_object_keys(coalesce(a, '{}'::jsonb) || coalesce(b, '{}'::jsonb)) AS k) keys
$$;
"""


def _baseline_sql(current: str) -> str:
    start = current.index("        action_counts = cur.action_counts ||")
    end = current.index("        first_seen = least(")
    merge = "        action_counts = ingest_merge_counts(cur.action_counts, excluded.action_counts),\n"
    return current[:start] + merge + current[end:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=12, help="measured batches per variant")
    ap.add_argument("--batch-size", type=int, default=5000)
    args = ap.parse_args()
    from tests import scratch

    env = scratch.start("qp_bench_ingest_write")
    try:
        from shared_models.db import get_engine
        from workers.ingestion import events as ev
        from workers.ingestion import erasure, store

        engine = get_engine(os.environ["DATABASE_URL"])
        with engine.begin() as c:
            c.exec_driver_sql(MERGE_COUNTS.replace("%", "%%"))
        baseline_sql, half_life = _baseline_sql(store._BATCH_SQL), 14 * 86400.0
        seed = [0]

        def batch() -> list[dict]:
            seed[0] += 1
            now = time.time()
            return [dict(r, event_id=str(ev.uuid7()), weight=ev.ACTIONS[r["action"]], ts=now - 1 + i * 1e-5,
                         metadata={}, metadata_json="{}")
                    for i, r in enumerate(bench._events(args.batch_size, 2000, seed[0]))]

        def current(events: list[dict]) -> None:
            with engine.begin() as c:
                store.write_events(c, events, half_life)

        def baseline(events: list[dict]) -> None:
            users = sorted({e["user_id"] for e in events})
            params = {"eusers": users, "ekeys": [erasure.erasure_key(u) for u in users],
                      "ids": [e["event_id"] for e in events], "users": [e["user_id"] for e in events],
                      "entities": [e["entity_id"] for e in events], "actions": [e["action"] for e in events],
                      "weights": [e["weight"] for e in events], "ts": [e["ts"] for e in events],
                      "metas": [e["metadata_json"] for e in events], "half_life": half_life}
            with engine.begin() as c:
                store.lock_for_writing(c)
                c.exec_driver_sql(baseline_sql, params).one()

        rates: dict[str, list[float]] = {"baseline": [], "current": []}
        for i in range(args.batches + 3):
            for name, fn in (("baseline", baseline), ("current", current)):
                events = batch()
                t = time.perf_counter()
                fn(events)
                if i >= 3:  # warm-up rounds not counted
                    rates[name].append(len(events) / (time.perf_counter() - t))
        b, c = statistics.median(rates["baseline"]), statistics.median(rates["current"])
        print(f"batch write, {args.batch_size:,} events per batch, {args.batches} batches each, median "
              f"(min-max):")
        for name, v in rates.items():
            print(f"  {name:9s} {statistics.median(v):10,.0f} events/s ({min(v):,.0f}-{max(v):,.0f})")
        print(f"ratio current / baseline = {c / b:.2f}x")
    finally:
        env.close()


if __name__ == "__main__":
    main()
