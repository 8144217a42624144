"""Listener for the consumer's job channels: ``tickstock.jobs.backtest`` and ``tickstock.jobs.cancel``.

Redis pub/sub keeps no backlog, so a beat-driven poll would miss messages: the
listener is its own long-running process (``quantpipe patterns listen``, one per
deployment). It only validates, records the job in ``backtest_jobs`` (the job_id is
the idempotency key: a repeated request does nothing) and enqueues
``patterns.backtest``; the work runs on the patterns workers. A malformed request
is dead-lettered and answered with a ``failed`` result naming the field.
"""

from __future__ import annotations

import json
import time
from typing import Callable

import redis.exceptions
from sqlalchemy import Engine, func, update
from sqlalchemy.dialects.postgresql import insert

from shared_models import dead_letters
from shared_models.models.patterns import BacktestJob as Job

from .backtest import RESULTS_CHANNEL
from .jobs import JobError, validate_job

JOB_CHANNEL = "tickstock.jobs.backtest"
CANCEL_CHANNEL = "tickstock.jobs.cancel"


def handle(engine: Engine, redis_client, channel: str, raw: str | bytes,
           enqueue: Callable[[str], None]) -> str:
    """Process one message; returns what was done (for logs and tests)."""
    try:
        msg = json.loads(raw)
        if not isinstance(msg, dict):
            raise ValueError("message: not a JSON object")
    except ValueError as exc:
        _reject(engine, redis_client, channel, str(raw)[:2000], f"message: {exc}", None, "message")
        return "rejected"
    if channel == CANCEL_CHANNEL:
        job_id = str(msg.get("job_id") or "")
        with engine.begin() as conn:
            n = conn.execute(update(Job).where(Job.job_id == job_id, Job.status.in_(("queued", "running")))
                             .values(status="cancelled", updated_at=func.now())).rowcount
        return "cancelled" if n else "cancel-ignored"
    try:
        job = validate_job(msg)
    except JobError as exc:
        _reject(engine, redis_client, channel, msg, str(exc), msg.get("job_id"), exc.field)
        return "rejected"
    with engine.begin() as conn:
        new = conn.execute(insert(Job).values(
            job_id=job["job_id"], user_id=None if job["user_id"] is None else str(job["user_id"]), request=job)
            .on_conflict_do_nothing(index_elements=[Job.job_id])).rowcount
    if not new:
        return "duplicate"
    enqueue(job["job_id"])
    return "queued"


def _reject(engine: Engine, redis_client, channel: str, payload, reason: str, job_id, field: str) -> None:
    with engine.begin() as conn:
        dead_letters.keep(conn, "patterns", f"listener:{channel}", reason,
                          payload if isinstance(payload, dict) else {"raw": payload}, field=field)
    if job_id:
        redis_client.publish(RESULTS_CHANNEL, json.dumps({"job_id": str(job_id), "status": "failed",
                                                          "results": {}, "error": reason, "timestamp": time.time()}))


def listen(engine: Engine, redis_client, enqueue: Callable[[str], None], should_stop: Callable[[], bool],
           on_action: Callable[[str, str], None] | None = None) -> None:
    """Subscribe and handle messages until ``should_stop()``; reconnects after a Redis outage."""
    while not should_stop():
        pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(JOB_CHANNEL, CANCEL_CHANNEL)
            while not should_stop():
                m = pubsub.get_message(timeout=0.5)
                if m is None or m["type"] != "message":
                    continue
                ch = m["channel"].decode() if isinstance(m["channel"], bytes) else m["channel"]
                action = handle(engine, redis_client, ch, m["data"], enqueue)
                if on_action:
                    on_action(ch, action)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            if on_action:
                on_action("redis", f"reconnecting: {exc}")
            time.sleep(1)
        finally:
            pubsub.close()
