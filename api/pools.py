"""Every pool (the four and notify) at a glance: workers, queue depth, tasks/s, dead letters, last error.

What the dashboard's Overview shows and ``GET /api/v1/pools`` returns. Workers and
queue depth are the ``/health`` facts; tasks/s is the change of the workers' own task
counters (``celery inspect stats``) between two gatherings of those facts, so the first
call after start has none; the last error is the pool's newest dead letter.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import text

_lock = threading.Lock()
_previous: dict[str, Any] = {"at": None, "totals": {}}

DEAD = "SELECT pool, count(*) FROM dead_letters GROUP BY pool"
LAST = """
SELECT DISTINCT ON (pool) pool, source, field, reason, created_at, extract(epoch FROM now() - created_at)
FROM dead_letters ORDER BY pool, created_at DESC, id DESC
"""


def _rates(f: dict) -> dict[str, float | None]:
    """Tasks per second per pool since the previous gathering (None until there are two)."""
    pools = f["workers"]
    with _lock:
        prev_at, prev = _previous["at"], _previous["totals"]
        now, totals = f.get("gathered_at"), f.get("task_totals") or {}
        if now is not None and now != prev_at and totals:
            _previous.update(at=now, totals=totals, rates=_compute(pools, prev_at, prev, now, totals))
        return dict(_previous.get("rates") or {p: None for p in pools})


def _compute(pools, prev_at, prev, now, totals) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for pool, hosts in pools.items():
        if prev_at is None or not hosts:
            out[pool] = None if prev_at is None else 0.0
            continue
        done = sum(max(0, totals.get(h, 0) - prev.get(h, 0)) for h in hosts if h in prev)
        out[pool] = round(done / max(now - prev_at, 1e-6), 3)
    return out


def overview() -> dict[str, Any]:
    """Per pool: workers, hostnames, queue depth, tasks/s, dead letters, last error; plus services and heartbeat."""
    from workers.patterns.liveness import heartbeat_age

    from .db import engine
    from .health import _redis, facts

    f = facts()
    rates = _rates(f)
    dead: dict[str, int] = {}
    last: dict[str, dict] = {}
    if f["database"]:
        with engine().connect() as conn:
            dead = {p: int(n) for p, n in conn.execute(text(DEAD))}
            for pool, source, field, reason, at, ago in conn.execute(text(LAST)):
                last[pool] = {"source": source, "field": field, "reason": reason[:300], "at": at,
                              "age_seconds": float(ago)}
    heartbeat = None
    if f["redis"]:
        try:
            heartbeat = heartbeat_age(_redis())
        except Exception:  # noqa: BLE001 - reported as unknown
            heartbeat = None
    return {
        "healthy": f["healthy"], "database": f["database"], "redis": f["redis"],
        "schema_revision": f["revision"], "schema_head": f["head"], "errors": f["errors"],
        "heartbeat_age_seconds": None if heartbeat is None else round(heartbeat, 3),
        "age_seconds": f["age_seconds"],
        "pools": {p: {"workers": len(h), "hostnames": sorted(h), "queue_depth": f["depth"][p],
                      "tasks_per_second": rates.get(p), "dead_letters": dead.get(p, 0), "last_error": last.get(p)}
                  for p, h in f["workers"].items()},
    }
