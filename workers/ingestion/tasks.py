"""Celery tasks of the ingest pool: thin bodies that call the pool's logic.

Events never travel as one Celery message each: ``ingest.drain`` pulls batches from
the Redis Stream (see workers/ingestion/stream.py). Beat kicks it every second;
a drain that runs out of time budget with work left re-enqueues itself.
"""

from __future__ import annotations

import functools

from workers.app import app
from workers.ping import ping_task
from workers.retention import prune_task

from .stream import STREAM, forget_idle_consumers


ping = ping_task("ingest")
prune = prune_task("ingest")


@functools.lru_cache(maxsize=1)
def _pool():
    """The pool's resources, once per worker process (after fork: the engine pool is per process)."""
    from .pool import IngestPool

    return IngestPool()


@app.task(name="ingest.drain", ignore_result=True)  # beat runs it every second: no result bloat
def drain(time_budget: float | None = None) -> dict:
    """Drain the event stream into PostgreSQL in batches; safe to run anywhere, any number of times."""
    pool = _pool()
    stats = pool.drain(time_budget)
    forget_idle_consumers(pool.redis)  # crashed workers' consumers, once nothing is pending for them
    out = stats.as_dict()
    if stats.batches and pool.redis.xlen(STREAM) > 0:  # budget spent with work left
        drain.apply_async(kwargs={"time_budget": time_budget}, expires=60)
        out["rescheduled"] = True
    return out


@app.task(name="ingest.purge_events", ignore_result=False)
def purge_events() -> dict:
    """Retention: drop raw events and login attempts older than INGEST_RETENTION_DAYS (interests stay)."""
    from .store import purge_old_events

    pool = _pool()
    with pool.engine.begin() as conn:
        n = purge_old_events(conn, pool.settings.ingest.retention_days)
    return {"deleted_events": n, "retention_days": pool.settings.ingest.retention_days}


@app.task(name="ingest.record_event", ignore_result=True)
def record_event(event: dict) -> dict:
    """Baseline only (benchmarks/ingest.py): one Celery message and one transaction per event.

    Kept correct and idempotent (same validation and ON CONFLICT path) so the comparison is fair.
    """
    import json

    from .batch import split, write_batch

    pool = _pool()
    valid, rejects, _ = split([("task", {"e": json.dumps(event, default=str)})],
                              max_metadata_bytes=pool.settings.ingest.max_metadata_bytes, hash_ip=pool.hasher.ip)
    out = write_batch(pool.engine, valid, rejects, pool.half_life_seconds, "ingest.record_event")
    pool.note_committed({u: 1 for u in out.users})
    return {"inserted": out.inserted, "dead_lettered": out.dead_lettered}
