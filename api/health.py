"""What ``/health`` and ``/metrics`` know about the pipeline, gathered as the API role and cached briefly.

The facts are those of ``quantpipe status`` (database, Redis, schema revision,
workers and queue depth per pool) plus the pools' own gauges. Asking the workers
takes up to a second, so facts are reused for QUANTPIPE_API_HEALTH_CACHE_SECONDS;
one thread refreshes while the others wait for it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import text

from shared_models.settings import get_settings

_lock = threading.Lock()
_cache: dict[str, Any] = {"at": 0.0, "facts": None}
INSPECT_TIMEOUT = 1.0


def _redis():
    import redis

    from shared_models.db import redis_url

    return redis.Redis.from_url(redis_url(), socket_timeout=2, socket_connect_timeout=2)


def _gather() -> dict[str, Any]:
    from shared_models import migrate
    from workers.routing import POOLS, queue_depth

    from .db import engine

    facts: dict[str, Any] = {"database": False, "redis": False, "revision": None, "head": migrate.head_revision(),
                             "workers": {p: [] for p in POOLS}, "depth": {p: None for p in POOLS},
                             "task_totals": {}, "errors": {}, "gathered_at": time.time()}
    try:
        with engine().connect() as conn:
            facts["revision"] = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        facts["database"] = True
    except Exception as exc:  # noqa: BLE001 - reported as a fact, not raised
        facts["errors"]["database"] = str(exc).splitlines()[0][:200]
    try:
        client = _redis()
        client.ping()
        facts["redis"] = True
        facts["depth"] = {p: queue_depth(client, p) for p in POOLS}
    except Exception as exc:  # noqa: BLE001
        facts["errors"]["redis"] = str(exc).splitlines()[0][:200]
    if facts["redis"]:
        try:
            from workers.app import app

            replies = app.control.inspect(timeout=INSPECT_TIMEOUT).active_queues() or {}
            for hostname, queues in replies.items():
                for q in queues:
                    if q["name"] in facts["workers"]:
                        facts["workers"][q["name"]].append(hostname)
            if replies:  # tasks done per worker since it started (for tasks/s); returns once all have replied
                stats = app.control.inspect(timeout=INSPECT_TIMEOUT, limit=len(replies)).stats() or {}
                facts["task_totals"] = {h: int(sum((s.get("total") or {}).values())) for h, s in stats.items()}
        except Exception as exc:  # noqa: BLE001
            facts["errors"]["workers"] = str(exc).splitlines()[0][:200]
    facts["healthy"] = bool(facts["database"] and facts["redis"] and facts["revision"] == facts["head"]
                            and all(facts["workers"].values()))
    return facts


def facts(max_age: float | None = None) -> dict[str, Any]:
    """The latest facts, at most ``max_age`` seconds old (default QUANTPIPE_API_HEALTH_CACHE_SECONDS)."""
    max_age = get_settings().api.health_cache_seconds if max_age is None else max_age
    with _lock:
        now = time.monotonic()
        if _cache["facts"] is None or now - _cache["at"] > max_age:
            _cache["facts"], _cache["at"] = _gather(), time.monotonic()
        return {**_cache["facts"], "age_seconds": round(time.monotonic() - _cache["at"], 3)}
