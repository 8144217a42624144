"""Shared steps of the notify tests: subscribe, raise, drain the outbox in-process."""

from __future__ import annotations

import time

from sqlalchemy import text

from shared_models.db import unit_of_work
from shared_models.notifications import raise_alert

SAMPLES = {
    "anomaly.critical": {"anomaly_id": 17, "politician_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                         "politician_name": "Jane Doe", "anomaly_type": "late_disclosure", "subject": "AAPL",
                         "severity": 0.93, "threshold": 0.8, "confidence": 0.9,
                         "description": "Disclosed 212 days after the trade (STOCK Act: 45)"},
    "shadow.promotion": {"challenger": "momentum_v2", "previous_champion": "ensemble_xgb_v1", "actor": "auto",
                         "reason": "sequential test APPROVED at 1400 trades (score 87.5)", "forced": False,
                         "event_id": 3, "elapsed_ms": 31.2, "trades": {"challenger": 1400, "champion": 3000},
                         "evaluation": {"score": 87.5, "n_trades": 1400, "boundary": 2.41,
                                        "metrics": {"welch_z": 2.9,
                                                    "challenger": {"win_rate": 0.562, "sharpe": 0.112,
                                                                   "mean": 0.0021, "max_drawdown": 0.081},
                                                    "champion": {"win_rate": 0.51, "sharpe": 0.071, "mean": 0.0009,
                                                                 "max_drawdown": 0.094}}}},
    "shadow.manual_review": {"challenger": "mean_rev_v1", "champion": "momentum_v2", "decision": "APPROVED",
                             "evaluation": {"score": 80.0, "n_trades": 600}},
    "shadow.rollback": {"from_model": "momentum_v2", "to_model": "ensemble_xgb_v1", "actor": "monitor",
                        "reason": "automatic rollback: win rate 41.0% over 75 trades", "elapsed_ms": 4.1,
                        "metrics": {"monitor": {"n_trades": 75, "z": -3.1, "boundary": -2.6}}},
    "shadow.degradation": {"champion": "momentum_v2", "monitor": {"n_trades": 50, "looks_done": 2, "z": -1.8,
                                                                  "boundary": -2.6, "reason": "win rate 44%"}},
    "patterns.producer_down": {"age_seconds": 95.0, "limit_seconds": 30, "last_heartbeat": 1.7e9,
                               "last_heartbeat_iso": "2023-11-14T22:13:20+00:00", "source": "redis"},
    "pipeline.dead_letters": {"pool": "ingest", "count": 250, "window_seconds": 300, "threshold": 100,
                              "top_reasons": [{"source": "ingest.drain", "reason": "action: unknown", "count": 240}]},
}


def subscribe(target: str, events="*", fmt: str | None = None, min_priority: str = "low") -> tuple[dict, str]:
    from workers.notifications import subscriptions

    with unit_of_work() as s:
        return subscriptions.add(s, target, events, fmt=fmt, min_priority=min_priority, created_by="tests")


def raise_(event: str, key: str, data: dict | None = None, title: str | None = None):
    with unit_of_work() as s:
        return raise_alert(s, event, key, title or f"{event} {key}", data if data is not None else SAMPLES[event])


def open_count(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM notification_deliveries "
                              "WHERE status IN ('pending', 'sending')")).scalar()


def drain(notify_engine, settings, engine, timeout: float = 30.0) -> None:
    """Dispatch in-process until no delivery is open (waiting out backoffs)."""
    from workers.notifications.delivery import dispatch

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispatch(notify_engine, settings, budget_seconds=2.0)
        if open_count(engine) == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{open_count(engine)} deliveries still open after {timeout}s")


def deliveries(engine) -> list[dict]:
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(text(
            "SELECT d.id, d.status, d.attempts, d.last_status, a.event, CAST(d.idempotency_key AS text) AS key "
            "FROM notification_deliveries d JOIN notification_alerts a ON a.id = d.alert_id ORDER BY d.id"))]


def attempts(engine, delivery_id: int) -> list[dict]:
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(text(
            "SELECT attempt, http_status, error, started_at, finished_at FROM notification_attempts "
            "WHERE delivery_id = :d ORDER BY attempt"), {"d": delivery_id})]
