"""Retention: which operational rows each pool deletes, and the bounded-batch delete loop.

Every pool prunes only its own tables (its role holds DELETE on them and on nothing else),
in its own ``<pool>.prune`` beat task (``workers/retention.py``). A rule is a condition on
one table with an age in days (``QUANTPIPE_RETAIN_*``; 0 keeps the rows forever). Rows go
in batches of ``QUANTPIPE_RETAIN_BATCH_ROWS``, each batch its own short transaction
(locks held for one batch only; an interrupted run loses nothing and the next one goes on),
until a batch comes back short or the time budget is spent. Deleting what is already gone
deletes nothing: the task is idempotent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import text


@dataclass(frozen=True)
class Rule:
    name: str
    table: str
    where: str   # SQL on the table's columns; ``:cutoff`` is now() minus the rule's age
    days: int


def _dead_letters(pool: str, days: int) -> Rule:
    return Rule("dead_letters", "dead_letters", f"pool = '{pool}' AND created_at < :cutoff", days)


def rules(pool: str, settings) -> list[Rule]:
    """The retention rules of ``pool`` (those with an age of 0 days are left out)."""
    r = settings.retention
    own = {
        "patterns": [
            Rule("integration_events", "integration_events", '"timestamp" < :cutoff', r.integration_events_days),
            Rule("pattern_outbox_sent", "pattern_outbox", "sent_at < :cutoff", r.outbox_sent_days),
            Rule("pattern_detections_expired", "pattern_detections", "expires_at < :cutoff",
                 r.detections_expired_days),
        ],
        # a look is kept while its challenger is active, and each (challenger, champion)'s latest look
        # always (it is the pair's current decision and the idempotency key of a re-run evaluation)
        "shadow": [Rule("shadow_evaluations", "shadow_evaluations",
                        "created_at < :cutoff AND challenger_id IN (SELECT id FROM shadow_models "
                        "WHERE role = 'archived') AND id NOT IN (SELECT max(id) FROM shadow_evaluations "
                        "GROUP BY challenger_id, champion_id)", r.shadow_evaluations_days)],
        "notify": [Rule("notification_attempts", "notification_attempts",
                        "started_at < :cutoff AND delivery_id IN (SELECT id FROM notification_deliveries "
                        "WHERE status IN ('delivered', 'dead', 'cancelled'))", r.notification_attempts_days),
                   # deliveries and attempts go with their alert (ON DELETE CASCADE)
                   Rule("notification_alerts", "notification_alerts",
                        "created_at < :cutoff AND NOT EXISTS (SELECT 1 FROM notification_deliveries d "
                        "WHERE d.alert_id = notification_alerts.id AND d.status IN ('pending', 'sending'))",
                        r.notification_alerts_days)],
        # a run still open stays whatever its age: reconcile may still finish it
        "discovery": [Rule("discovery_scan_runs", "discovery_scan_runs",
                           "started_at < :cutoff AND network_done_at IS NOT NULL", r.discovery_scan_runs_days)],
    }.get(pool, [])
    return [x for x in own + [_dead_letters(pool, r.dead_letters_days)] if x.days > 0]


def prune(engine, rules: list[Rule], batch_rows: int, max_seconds: float = 120.0) -> dict:
    """Delete what ``rules`` select, ``batch_rows`` per transaction; {rule: rows, ..., batches, complete, role}."""
    out: dict = {rule.name: 0 for rule in rules}
    with engine.connect() as conn:  # who ran it: the pool's role (shared_models.roles)
        out["role"] = conn.execute(text("SELECT current_user")).scalar()
    batches, deadline, complete = 0, time.monotonic() + max_seconds, True
    for rule in rules:
        stmt = text(f"DELETE FROM {rule.table} WHERE id IN (SELECT id FROM {rule.table} "
                    f"WHERE {rule.where} LIMIT :n)")
        while True:
            if time.monotonic() > deadline:
                complete = False
                break
            with engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")  # never queue behind a long lock
                cutoff = conn.execute(text("SELECT now() - make_interval(days => :d)"), {"d": rule.days}).scalar()
                n = conn.execute(stmt, {"cutoff": cutoff, "n": batch_rows}).rowcount
            batches += 1
            out[rule.name] += n
            if n < batch_rows:
                break
    out.update(batches=batches, complete=complete)
    return out
