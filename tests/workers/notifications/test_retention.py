"""Retention of alerts (#9 item 12): an old alert whose deliveries are all finished goes, with its
deliveries and attempts; an alert still being delivered, or a recent one, stays. Run by the session's
notify worker, as its role (the cascade needs no DELETE on deliveries or attempts)."""

from __future__ import annotations

from sqlalchemy import text

from workers.app import app


def _alert(c, key: str, days_ago: int) -> int:
    return c.execute(text("INSERT INTO notification_alerts (alert_key, event, priority, title, data, created_at) "
                          "VALUES (:k, 'test', 'low', :k, '{}', now() - make_interval(days => :d)) RETURNING id"),
                     {"k": key, "d": days_ago}).scalar()


def _delivery(c, alert: int, sub: int, status: str) -> None:
    d = c.execute(text("INSERT INTO notification_deliveries (alert_id, subscription_id, status) "
                       "VALUES (:a, :s, :st) RETURNING id"), {"a": alert, "s": sub, "st": status}).scalar()
    c.execute(text("INSERT INTO notification_attempts (delivery_id, attempt, worker) VALUES (:d, 1, 'w')"), {"d": d})


def test_old_finished_alerts_go_with_their_deliveries_open_and_recent_ones_stay(workers, notify_db):
    from shared_models.settings import get_settings

    old = get_settings().retention.notification_alerts_days + 5
    with notify_db.begin() as c:
        sub = c.execute(text("INSERT INTO notification_subscriptions (name, target, format, events, min_priority, "
                             "secret_enc, created_by) VALUES ('s', 'http://127.0.0.1:9/', 'json', "
                             "ARRAY['*'], 'low', 'x', 'test') RETURNING id")).scalar()
        done, unsent, quiet = _alert(c, "done", old), _alert(c, "unsent", old), _alert(c, "quiet", old)
        fresh = _alert(c, "fresh", 1)
        _delivery(c, done, sub, "delivered")
        _delivery(c, unsent, sub, "pending")
        _delivery(c, fresh, sub, "dead")
    out = app.tasks["notify.prune"].delay().get(timeout=120)
    assert out["role"] == "quantpipe_notify" and out["notification_alerts"] == 2 and out["complete"], out
    with notify_db.connect() as c:
        left = set(c.execute(text("SELECT alert_key FROM notification_alerts")).scalars())
        deliveries = c.execute(text("SELECT count(*) FROM notification_deliveries")).scalar()
        attempts = c.execute(text("SELECT count(*) FROM notification_attempts")).scalar()
    assert left == {"unsent", "fresh"} and (deliveries, attempts) == (2, 2)
    assert app.tasks["notify.prune"].delay().get(timeout=120)["notification_alerts"] == 0  # idempotent
