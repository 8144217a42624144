"""Text user ids (migration 0011) against the bigint ids they replaced, on the ingest hot path.

    python benchmarks/user_ids.py [--batches 12] [--batch-size 5000]

Two databases on one server, in one process, measured alternately so machine load hits both
alike: one migrated to 0010 (``user_id bigint``, the batch statement with ``bigint[]`` user
arrays, as before) and one at head (``varchar(64) COLLATE "C"``, ``text[]`` arrays). Both write
the same fresh batches of integer ids through ``store.write_events``'s statement (erasure check,
event insert, interest upsert). The client side, ``check_user_id`` + ``build_event`` per event,
is timed in-process for an int, a string and a UUID id against the old int-only check.
Without DATABASE_URL it starts a private embedded PostgreSQL in a temporary home.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ingest as bench  # noqa: E402  (benchmarks/ingest.py: the event generator)


def _bigint_sql(current: str) -> str:
    return current.replace("%(eusers)s::text[]", "%(eusers)s::bigint[]").replace("%(users)s::text[]",
                                                                                  "%(users)s::bigint[]")


def _old_check(user_id):
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise ValueError("user_id")
    if not 0 < user_id <= 2**63 - 1:
        raise ValueError("user_id")
    return user_id


def client_side() -> None:
    import uuid

    from workers.ingestion import events as ev

    n = 200_000
    cases = {"old int check": (_old_check, 123456789), "int id": (ev.check_user_id, 123456789),
             "string id": (ev.check_user_id, "auth0|5f7c8ec7c33c6c004bbafe82"),
             "UUID object": (ev.check_user_id, uuid.uuid4())}
    base = None
    for name, (fn, value) in cases.items():
        ns = min(timeit.repeat(lambda: fn(value), number=n, repeat=5)) / n * 1e9
        base = base or ns
        print(f"  {name:14s} {ns:7.0f} ns per check")
    build = min(timeit.repeat(lambda: ev.build_event(user_id="u-42", entity_id="AAPL", action="view",
                                                     max_metadata_bytes=4096, hash_ip=str), number=20_000,
                              repeat=5)) / 20_000 * 1e6
    print(f"  build_event (string id) {build:.2f} us per event")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=12, help="measured batches per variant")
    ap.add_argument("--batch-size", type=int, default=5000)
    args = ap.parse_args()
    from tests import scratch

    env = scratch.start("qp_bench_user_ids")
    old_url = scratch.create_database(os.environ["DATABASE_URL"], "qp_bench_user_ids_old")
    try:
        from shared_models import migrate
        from shared_models.db import get_engine
        from workers.ingestion import events as ev
        from workers.ingestion import store

        migrate.upgrade(old_url, "0010")
        engines = {"bigint": get_engine(old_url), "text": get_engine(os.environ["DATABASE_URL"])}
        sql = {"bigint": _bigint_sql(store._BATCH_SQL), "text": store._BATCH_SQL}
        half_life, seed = 14 * 86400.0, [0]

        def batch() -> list[dict]:
            seed[0] += 1
            now = time.time()
            return [dict(r, event_id=str(ev.uuid7()), weight=ev.ACTIONS[r["action"]], ts=now - 1 + i * 1e-5,
                         metadata={}, metadata_json="{}")
                    for i, r in enumerate(bench._events(args.batch_size, 2000, seed[0]))]

        def write(kind: str, events: list[dict]) -> None:
            params = store._columns(events)
            params["half_life"] = half_life
            with engines[kind].begin() as c:
                store.lock_for_writing(c)
                c.exec_driver_sql(sql[kind], params).one()

        rates: dict[str, list[float]] = {"bigint": [], "text": []}
        for i in range(args.batches + 3):
            for kind in (("bigint", "text") if i % 2 else ("text", "bigint")):
                events = batch()
                t = time.perf_counter()
                write(kind, events)
                if i >= 3:  # warm-up rounds not counted
                    rates[kind].append(len(events) / (time.perf_counter() - t))
        print(f"batch write, {args.batch_size:,} events per batch, {args.batches} batches each, median (min-max):")
        for kind, v in rates.items():
            print(f"  user_id {kind:7s} {statistics.median(v):10,.0f} events/s ({min(v):,.0f}-{max(v):,.0f})")
        # each round writes one batch of each kind back to back: the median of the per-round ratios
        # cancels load drift better than the ratio of the medians
        ratio = statistics.median(t / b for t, b in zip(rates["text"], rates["bigint"]))
        print(f"  ratio of medians {statistics.median(rates['text']) / statistics.median(rates['bigint']):.2f}x")
        print("client-side id check:")
        client_side()
        print(f"ratio text / bigint user ids = {ratio:.2f}x (goal >= 0.90; median of {len(rates['text'])} "
              "paired rounds)")
        for e in engines.values():
            e.dispose()
    finally:
        from tests.scratch import drop_database

        try:
            drop_database(old_url)
        finally:
            env.close()


if __name__ == "__main__":
    main()
