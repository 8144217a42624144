"""Working the outbox: claim due deliveries, send them, record every attempt, retry or dead-letter.

The database, not the Celery message, holds the state, so a killed worker loses nothing:

1. **claim** (one transaction): due rows (``pending`` and due, or ``sending`` whose lease
   expired because their worker vanished) are taken ``FOR UPDATE SKIP LOCKED`` — two
   dispatchers never take the same row — marked ``sending`` with a fresh lease token, and an
   attempt row is written *before* anything is sent (an earlier attempt that never finished
   is closed as interrupted);
2. **send**, outside any transaction, with the channel's timeout (< the lease);
3. **record** (one transaction): the attempt's status/error/duration, and the delivery becomes
   ``delivered``, ``pending`` again after an exponential backoff with jitter (capped), or
   ``dead`` with a dead letter after the last try (or at once for a permanent refusal). The
   update applies only while our lease token is current.

A delivery is retried only when it was not recorded as delivered, so a receiver never gets an
alert twice from us — except when a worker dies between the receiver's answer and step 3;
then the resend carries the same ``Idempotency-Key`` (and, for email, Message-ID) for the
receiver to drop it (docs/notifications.md).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from shared_models import dead_letters

from . import channels, render, secret_box

log = logging.getLogger(__name__)

CLAIM_SQL = """
WITH due AS (
    SELECT id FROM notification_deliveries
    WHERE status IN ('pending', 'sending') AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id LIMIT :limit FOR UPDATE SKIP LOCKED
)
UPDATE notification_deliveries d
SET status = 'sending', attempts = d.attempts + 1, lease_token = gen_random_uuid(),
    lease_until = now() + make_interval(secs => :lease), next_attempt_at = now() + make_interval(secs => :lease)
FROM due WHERE d.id = due.id
RETURNING d.id, d.attempts, CAST(d.lease_token AS text), CAST(d.idempotency_key AS text), d.alert_id,
          d.subscription_id
"""

DETAILS_SQL = """
SELECT d.id, CAST(a.uid AS text), a.event, a.priority, a.title, a.data, extract(epoch FROM a.created_at),
       s.target, s.format, s.secret_enc, s.removed_at IS NOT NULL
FROM notification_deliveries d JOIN notification_alerts a ON a.id = d.alert_id
JOIN notification_subscriptions s ON s.id = d.subscription_id WHERE d.id = ANY(:ids)
"""

INTERRUPTED = "interrupted: the worker stopped before the outcome was recorded"


@dataclass
class Claimed:
    delivery_id: int
    attempt: int
    token: str
    idempotency_key: str
    subscription_id: int
    target: str = ""
    fmt: str = "json"
    secret_enc: str = ""
    removed: bool = False
    uid: str = ""
    event: str = ""
    priority: str = ""
    title: str = ""
    data: dict = field(default_factory=dict)
    occurred_at: float = 0.0


@dataclass
class Report:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    cancelled: int = 0

    def add(self, other: "Report") -> None:
        for k in self.__dict__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay after the ``attempt``-th failure: base·2^(attempt−1), capped, with equal jitter
    (half fixed, half random) so retries of many deliveries do not arrive together."""
    delay = min(cap, base * 2.0 ** max(0, attempt - 1))
    return delay / 2.0 + (rng or random).uniform(0.0, delay / 2.0)


def claim(engine: Engine, limit: int, lease_seconds: float, worker: str) -> list[Claimed]:
    with engine.begin() as conn:
        rows = conn.execute(text(CLAIM_SQL), {"limit": limit, "lease": lease_seconds}).all()
        if not rows:
            return []
        ids = [r[0] for r in rows]
        conn.execute(text("UPDATE notification_attempts SET finished_at = now(), error = :e "
                          "WHERE delivery_id = ANY(:ids) AND finished_at IS NULL"), {"e": INTERRUPTED, "ids": ids})
        conn.execute(text("INSERT INTO notification_attempts (delivery_id, attempt, worker) "
                          "SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:n AS int[]), CAST(:w AS varchar[]))"),
                     {"ids": ids, "n": [r[1] for r in rows], "w": [worker] * len(rows)})
        details = {r[0]: r for r in conn.execute(text(DETAILS_SQL), {"ids": ids})}
    out = []
    for did, attempt, token, key, _alert, sub in rows:
        d = details[did]
        out.append(Claimed(did, attempt, token, key, sub, target=d[7], fmt=d[8], secret_enc=d[9], removed=d[10],
                           uid=d[1], event=d[2], priority=d[3], title=d[4], data=d[5] or {},
                           occurred_at=float(d[6])))
    return out


def _finish(engine: Engine, c: Claimed, outcome: channels.Outcome, settings, status: str | None = None) -> str:
    """Record the attempt and move the delivery on; returns its new status."""
    n = settings.notify
    if status is None:
        if outcome.ok:
            status = "delivered"
        elif outcome.retryable and c.attempt < n.max_attempts:
            status = "pending"
        else:
            status = "dead"
    delay = backoff(c.attempt, n.backoff_seconds, n.backoff_cap_seconds) if status == "pending" else 0.0
    with engine.begin() as conn:
        conn.execute(text("UPDATE notification_attempts SET finished_at = now(), http_status = :s, error = :e, "
                          "duration_ms = :ms WHERE delivery_id = :id AND attempt = :n"),
                     {"s": outcome.status, "e": outcome.error, "ms": outcome.duration_ms, "id": c.delivery_id,
                      "n": c.attempt})
        moved = conn.execute(text(
            "UPDATE notification_deliveries SET status = :st, last_status = :s, last_error = :e, "
            "delivered_at = CASE WHEN :st = 'delivered' THEN now() END, lease_token = NULL, lease_until = NULL, "
            "next_attempt_at = now() + make_interval(secs => :delay) "
            "WHERE id = :id AND lease_token = CAST(:token AS uuid)"),
            {"st": status, "s": outcome.status, "e": outcome.error, "delay": delay, "id": c.delivery_id,
             "token": c.token}).rowcount
        if not moved:
            log.warning("delivery %s: lease lost before attempt %s was recorded (another worker took it over)",
                        c.delivery_id, c.attempt)
            return "lost"
        if status == "dead":
            _dead_letter(conn, c, outcome)
    return status


def _dead_letter(conn, c: Claimed, outcome: channels.Outcome) -> None:
    attempts = [{"attempt": a, "http_status": s, "error": e, "started_at": t} for a, s, e, t in conn.execute(text(
        "SELECT attempt, http_status, error, CAST(started_at AS text) FROM notification_attempts "
        "WHERE delivery_id = :id ORDER BY attempt"), {"id": c.delivery_id})]
    reason = (f"delivery {c.delivery_id} of {c.event} alert {c.uid} to subscription {c.subscription_id} failed "
              f"after {c.attempt} attempt(s): {outcome.error or 'refused'}")
    dead_letters.keep(conn, "notify", "notify.deliver", reason,
                      {"delivery_id": c.delivery_id, "alert": c.uid, "event": c.event,
                       "subscription_id": c.subscription_id, "format": c.fmt, "idempotency_key": c.idempotency_key,
                       "attempts": attempts}, field="target")


def deliver_one(engine: Engine, c: Claimed, settings, base_url: str) -> str:
    """Send one claimed delivery and record it; returns the delivery's new status."""
    if c.removed:
        return _finish(engine, c, channels.Outcome(False, None, "subscription removed", False, 0.0), settings,
                       status="cancelled")
    if c.attempt > settings.notify.max_attempts:  # the last try was interrupted: give up, as after any last try
        return _finish(engine, c, channels.Outcome(False, None, f"{INTERRUPTED} (attempt {c.attempt - 1} was the "
                                                   "last)", False, 0.0), settings, status="dead")
    try:
        secret = secret_box.decrypt(c.secret_enc, settings)
    except secret_box.SecretError as exc:
        return _finish(engine, c, channels.Outcome(False, None, str(exc), False, 0.0), settings)
    msg = render.render(c.event, c.priority, c.title, c.data, base_url)
    env = channels.Envelope(c.delivery_id, c.subscription_id, c.idempotency_key, c.uid, c.event, c.priority,
                            c.occurred_at, c.attempt, c.data, msg)
    try:
        outcome = channels.send(c.target, c.fmt, env, secret, settings)
    except Exception as exc:  # noqa: BLE001 - a bug in one channel must not leave the row claimed
        log.exception("delivery %s: unexpected error", c.delivery_id)
        outcome = channels.Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500], True, 0.0)
    return _finish(engine, c, outcome, settings)


def dispatch(engine: Engine, settings, budget_seconds: float = 20.0, worker: str | None = None) -> Report:
    """Deliver everything due, several at a time, until nothing is due or the budget is spent."""
    n = settings.notify
    worker = worker or worker_name()
    base_url = render.dashboard_base(settings)
    report = Report()
    deadline = time.monotonic() + budget_seconds
    with ThreadPoolExecutor(max_workers=n.senders, thread_name_prefix="notify-send") as pool:
        while time.monotonic() < deadline:
            batch = claim(engine, n.senders, n.lease_seconds, worker)
            if not batch:
                break
            step = Report(claimed=len(batch))
            for status in pool.map(lambda c: deliver_one(engine, c, settings, base_url), batch):
                if status == "delivered":
                    step.delivered += 1
                elif status == "pending":
                    step.retrying += 1
                elif status == "dead":
                    step.dead += 1
                elif status == "cancelled":
                    step.cancelled += 1
            report.add(step)
    return report
