"""Celery tasks of the ingest pool: thin bodies that call the pool's pure logic.

Events never travel as one Celery message each: ``ingest.drain`` pulls batches from
the Redis Stream (see shared_models/ingest/stream.py). Beat kicks it every second;
a drain that runs out of time budget with work left re-enqueues itself.
"""

from __future__ import annotations

import functools
import os
import socket

from shared_models.ingest.stream import STREAM, forget_idle_consumers
from workers.app import app


@app.task(name="ingest.ping", ignore_result=False, acks_late=False)
def ping() -> dict:
    """Liveness probe: proves a worker of this queue picked the task up."""
    return {"pool": "ingest", "hostname": ping.request.hostname or socket.gethostname(), "pid": os.getpid()}


@functools.lru_cache(maxsize=1)
def _client():
    """One client per worker process (after fork: the engine pool is per process)."""
    from shared_models.shadow_watch import ShadowWatchSync

    return ShadowWatchSync()


@app.task(name="ingest.drain", ignore_result=True)  # beat runs it every second: no result bloat
def drain(time_budget: float | None = None) -> dict:
    """Drain the event stream into PostgreSQL in batches; safe to run anywhere, any number of times."""
    sw = _client()
    budget = time_budget if time_budget is not None else sw.settings.ingest.drain_seconds
    stats = sw.drain_now(time_budget=budget)
    forget_idle_consumers(sw.redis)  # crashed workers' consumers, once nothing is pending for them
    out = stats.as_dict()
    if stats.batches and sw.redis.xlen(STREAM) > 0:  # budget spent with work left
        drain.apply_async(kwargs={"time_budget": time_budget}, expires=60)
        out["rescheduled"] = True
    return out


@app.task(name="ingest.purge_events", ignore_result=False)
def purge_events() -> dict:
    """Retention: drop raw events and login attempts older than INGEST_RETENTION_DAYS (interests stay)."""
    from shared_models.ingest.store import purge_old_events

    sw = _client()
    with sw.engine.begin() as conn:
        n = purge_old_events(conn, sw.settings.ingest.retention_days)
    return {"deleted_events": n, "retention_days": sw.settings.ingest.retention_days}


@app.task(name="ingest.record_event", ignore_result=True)
def record_event(event: dict) -> dict:
    """Baseline only (benchmarks/ingest.py): one Celery message and one transaction per event.

    Kept correct and idempotent (same validation and ON CONFLICT path) so the comparison is fair.
    """
    from shared_models.ingest import events as ev
    from shared_models.ingest.stream import write_batch

    sw = _client()
    try:
        valid = [ev.revalidate(event, max_metadata_bytes=sw.settings.ingest.max_metadata_bytes,
                               hash_ip=sw.hasher.ip)]
        rejects: list = []
    except ev.EventValidationError as exc:
        valid, rejects = [], [(event, exc.field, exc.reason)]
    inserted, users, dead = write_batch(sw.engine, valid, rejects, sw.half_life_seconds, "ingest.record_event")
    sw.invalidate_users(users)
    return {"inserted": inserted, "dead_lettered": dead}
