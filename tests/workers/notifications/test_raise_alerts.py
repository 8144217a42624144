"""``raise_alerts`` (one statement for several alerts, as a politician's scan raises them) writes what
``raise_alert`` writes for each in turn: the same alerts, in the same order, the same outbox rows."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared_models.notifications import raise_alert, raise_alerts

from .helpers import SAMPLES, raise_, subscribe


def _written(s: Session) -> list[tuple]:
    return [tuple(r) for r in s.execute(text(
        "SELECT a.alert_key, a.event, a.priority, a.title, a.data, "
        "array(SELECT d.subscription_id FROM notification_deliveries d WHERE d.alert_id = a.id ORDER BY 1) "
        "FROM notification_alerts a ORDER BY a.id"))]


def test_raise_alerts_writes_what_raise_alert_writes_in_turn(notify_db):
    subscribe("https://example.invalid/all", "*")
    subscribe("https://example.invalid/shadow", "shadow.*", min_priority="high")
    subscribe("https://example.invalid/critical", "anomaly.critical")
    raise_("anomaly.critical", "anomaly:1")  # raised before: a duplicate below
    data = SAMPLES["anomaly.critical"]
    alerts = [("anomaly.critical", "anomaly:2", "Jane Doe: late_disclosure", {**data, "anomaly_id": 2}),
              ("anomaly.critical", "anomaly:1", "Jane Doe: late_disclosure", data),
              ("shadow.promotion", "event:7", "x" * 400, SAMPLES["shadow.promotion"]),
              ("anomaly.critical", "anomaly.critical:anomaly:3", "é ünïcode", {"severity": float("nan"), "n": 3})]
    results = []
    for batched in (True, False):
        with Session(notify_db) as s, s.begin():
            raised = (raise_alerts(s, alerts) if batched
                      else [raise_alert(s, e, k, t, d) for e, k, t, d in alerts])
            results.append((raised, _written(s)))
            s.rollback()
    assert results[0] == results[1]
    raised, written = results[0]
    assert [r.deliveries for r in raised] == [2, None, 2, 2] and len(written) == 4
    with notify_db.connect() as c:
        assert raise_alerts(c, []) == []
