"""Producer liveness for the consumer: heartbeat key, PRODUCER_ALIVE rows, health status.

The consumer treats the producer as offline when ``tickstock:producer:heartbeat``
is older than 30 s, so it is refreshed every PATTERNS_HEARTBEAT_SECONDS (<= 15) — by a
thread in each patterns worker's main process (``HeartbeatThread``), not by a task: a
task would queue behind a long scan on the patterns queue (29 s stale with one process),
while the main process of a prefork worker only supervises its children and is never busy.
The PRODUCER_ALIVE row is throttled with ``SET NX EX`` on a Redis key, so however many
workers beat, at most one row per period is written.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

from datetime import timedelta

from sqlalchemy import Engine, bindparam, extract, func, select
from sqlalchemy.dialects.postgresql import JSONB

from shared_models.models.patterns import PatternDetection, PatternOutbox

HEARTBEAT_KEY = "tickstock:producer:heartbeat"
ALIVE_LOCK_KEY = "quantpipe:patterns:alive-lock"
STARTED_KEY = "quantpipe:patterns:started-at"
HEALTH_CHANNEL = "tickstock.health.status"
logger = logging.getLogger(__name__)


def producer_metrics(engine: Engine) -> dict:
    """Counts the consumer's health view and PRODUCER_ALIVE details show."""
    d, o = PatternDetection, PatternOutbox
    with engine.connect() as conn:
        detected, last, unsent, per_min = conn.execute(select(
            select(func.count()).select_from(d).scalar_subquery(),
            select(extract("epoch", func.max(d.detected_at))).scalar_subquery(),
            select(func.count()).select_from(o).where(o.sent_at.is_(None)).scalar_subquery(),
            select(func.count()).select_from(o).where(o.sent_at > func.now() - timedelta(minutes=1))
            .scalar_subquery())).one()
    return {"patterns_detected": int(detected), "last_pattern_time": float(last) if last is not None else None,
            "outbox_unsent": int(unsent), "events_last_minute": int(per_min)}


def beat(engine: Engine, redis_client, alive_seconds: float = 60.0, now: float | None = None) -> dict:
    """Set the heartbeat key, publish health, and log PRODUCER_ALIVE when the period has passed."""
    now = time.time() if now is None else now
    redis_client.set(HEARTBEAT_KEY, f"{now:.3f}")
    redis_client.set(STARTED_KEY, f"{now:.3f}", nx=True)
    started = float(redis_client.get(STARTED_KEY) or now)
    metrics = producer_metrics(engine)
    metrics["uptime_seconds"] = round(now - started, 1)
    status = "healthy" if metrics["outbox_unsent"] < 1000 else "degraded"
    redis_client.publish(HEALTH_CHANNEL, json.dumps({"status": status, "metrics": metrics, "timestamp": now}))
    alive = bool(redis_client.set(ALIVE_LOCK_KEY, "1", nx=True, ex=max(1, int(alive_seconds))))
    if alive:
        details = {"patterns_detected": metrics["patterns_detected"], "uptime_seconds": metrics["uptime_seconds"],
                   "last_pattern_time": metrics["last_pattern_time"], "status": status}
        with engine.begin() as conn:  # the contract's SQL function (DESIGN §4), not a plain insert
            conn.execute(select(func.log_integration_event(
                func.gen_random_uuid(), "heartbeat", "TickStockPL", "PRODUCER_ALIVE", None, None, None, None, None,
                bindparam("details", details, type_=JSONB))))
    return {"status": status, "alive_logged": alive, **metrics}


def heartbeat_age(redis_client, now: float | None = None) -> float | None:
    raw = redis_client.get(HEARTBEAT_KEY)
    if raw is None:
        return None
    return (time.time() if now is None else now) - float(raw)


class HeartbeatThread(threading.Thread):
    """``beat`` every ``period`` seconds until stopped, outside the task queue.

    Its own Redis client (never shared with forked pool children); any error is logged and the
    next period tries again with a fresh client, so a Redis or PostgreSQL restart only costs the
    beats that fall inside it.
    """

    def __init__(self, engine_factory: Callable, redis_factory: Callable, period: float, alive_seconds: float):
        super().__init__(name="patterns-heartbeat", daemon=True)
        self.engine_factory, self.redis_factory = engine_factory, redis_factory
        self.period, self.alive_seconds = period, alive_seconds
        self.stopping = threading.Event()
        self.beats = 0

    def run(self) -> None:
        client = None
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                client = client or self.redis_factory()
                beat(self.engine_factory(), client, self.alive_seconds)
                self.beats += 1
            except Exception as exc:  # noqa: BLE001 - liveness must outlive any outage
                logger.warning("patterns heartbeat failed (retrying in %.0f s): %s", self.period, exc)
                client = None
            self.stopping.wait(max(0.0, self.period - (time.monotonic() - started)))

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.join(timeout)
