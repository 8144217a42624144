"""The pools raise their alerts in the transaction of the fact: shadow decisions, discovery scans."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sqlalchemy import text

from shared_models.db import unit_of_work
from tests.workers.shadow.conftest import make_trades, registry_db  # noqa: F401 - fixture

from .conftest import fast
from .helpers import drain, subscribe


def _alerts(engine, event: str) -> list[dict]:
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(text(
            "SELECT alert_key, title, data FROM notification_alerts WHERE event = :e ORDER BY id"), {"e": event})]


def test_shadow_promotion_and_rollback_alert_in_their_transaction(notify_db, registry_db, notify_engine,  # noqa: F811
                                                                   engine, receiver):
    from workers.shadow import service
    from workers.shadow.registry import ShadowError

    subscribe(receiver.url, "shadow.*", "slack")
    service.deploy("champ_a", "xgboost", champion=True)
    service.deploy("chal_b", "lightgbm")
    with pytest.raises(ShadowError):
        service.promote("chal_b", actor="tests", reason="", force=True)  # refused: nothing committed, nobody told
    assert _alerts(engine, "shadow.promotion") == []
    out = service.promote("chal_b", actor="tests", reason="demo of a forced promotion", force=True)
    [promo] = _alerts(engine, "shadow.promotion")
    assert promo["alert_key"] == f"shadow.promotion:event:{out['event_id']}"
    assert promo["data"]["challenger"] == "chal_b" and promo["data"]["previous_champion"] == "champ_a"
    back = service.rollback(actor="tests", reason="checking the alert")
    [rb] = _alerts(engine, "shadow.rollback")
    assert rb["alert_key"] == f"shadow.rollback:event:{back['event_id']}"
    assert rb["data"]["from_model"] == "chal_b" and rb["data"]["to_model"] == "champ_a"
    drain(notify_engine, fast(), engine)
    # one dispatch sends both concurrently (QUANTPIPE_NOTIFY_SENDERS): arrival order is not part of the contract
    texts = sorted((r.json["text"] for r in receiver.requests), key=lambda t: "Rollback" in t)
    assert len(texts) == 2
    assert texts[0].startswith("[HIGH] Promotion: chal_b is the new champion") and "replaced champ_a" in texts[0]
    assert texts[1].startswith("[CRITICAL] Rollback: champ_a is champion again")


def test_an_approved_challenger_without_auto_promote_asks_for_manual_review(notify_db, registry_db,  # noqa: F811
                                                                            engine):
    from shared_models.settings import get_settings
    from workers.shadow import decisions, service

    rng = np.random.default_rng(7)
    service.deploy("champ_c", "xgboost", champion=True)
    service.deploy("chal_d", "lightgbm")
    service.record_trades("champ_c", make_trades(rng.normal(0.0, 0.02, 600), prefix="c"))
    service.record_trades("chal_d", make_trades(rng.normal(0.012, 0.02, 600), prefix="d"))
    s = get_settings()
    manual = dataclasses.replace(s, shadow=dataclasses.replace(s.shadow, auto_promote=False))
    with unit_of_work() as session:
        out = decisions.evaluate_challenger(session, "chal_d", manual)
    assert out.decision == "APPROVED", out.message
    [alert] = _alerts(engine, "shadow.manual_review")
    assert alert["alert_key"].startswith("shadow.manual_review:evaluation:")
    assert alert["data"]["decision"] == "APPROVED" and alert["data"]["evaluation"]["score"] == out.evaluation["score"]
    with unit_of_work() as session:  # the same look again: stored once, announced once
        assert decisions.evaluate_challenger(session, "chal_d", manual).decision == "DUPLICATE"
    assert len(_alerts(engine, "shadow.manual_review")) == 1


def test_a_discovery_scan_announces_each_critical_anomaly_once(notify_db, engine, receiver):
    from shared_models.settings import get_settings
    from tests.workers.discovery.helpers import ensure_loaded
    from workers.discovery import scan

    ensure_loaded(engine)
    with engine.connect() as c:
        pid = c.execute(text("SELECT CAST(politician_id AS text) FROM trades WHERE disclosure_lag_days > 400 "
                             "GROUP BY politician_id ORDER BY count(*), politician_id LIMIT 1")).scalar_one()
    subscribe(receiver.url, "anomaly.critical")
    settings = get_settings().discovery
    for _ in range(2):  # a re-scan announces nothing new
        with unit_of_work() as session:
            scan.scan_politician(session, pid, settings)
    with engine.connect() as c:
        critical = c.execute(text("SELECT id FROM anomaly_detections WHERE politician_id = CAST(:p AS uuid) "
                                  "AND severity >= :t AND NOT investigated ORDER BY id"),
                             {"p": pid, "t": settings.critical_severity}).scalars().all()
    alerts = _alerts(engine, "anomaly.critical")
    assert critical and [a["alert_key"] for a in alerts] == [f"anomaly.critical:anomaly:{i}" for i in critical]
    drain(notify_engine_for(engine), fast(), engine)
    got = sorted(r.json["data"]["anomaly_id"] for r in receiver.requests)
    assert got == sorted(critical)
    assert all(r.json["link"].endswith(f"/dashboard/politicians/{pid}") for r in receiver.requests)


def notify_engine_for(engine):
    from workers.notifications.db import engine as role_engine

    return role_engine(engine.url.render_as_string(hide_password=False))
