"""Roles of migration 0012: the notify worker reaches only its tables; pools raise alerts only through
notify_alert(); the API stores secrets it can never read back."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, text

from .helpers import subscribe


def _as(database_url: str, role: str):
    from workers.notifications.db import role_url

    return create_engine(role_url(database_url, role))


@pytest.mark.parametrize("sql", ["SELECT count(*) FROM shadow_models", "SELECT count(*) FROM ingest_interests",
                                 "DELETE FROM notification_subscriptions", "UPDATE notification_alerts SET title = title",
                                 "UPDATE dead_letters SET reason = reason",
                                 "INSERT INTO notification_subscriptions (name, target, format, events, "
                                 "min_priority, secret_enc, created_by) VALUES ('x','http://x','json','{*}','low',"
                                 "'s','t')"])
def test_the_notify_role_cannot(database_url, notify_db, sql):
    eng = _as(database_url, "quantpipe_notify")
    try:
        with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
            with eng.begin() as c:
                c.execute(text(sql))
    finally:
        eng.dispose()


def test_the_api_role_cannot_read_a_secret(database_url, notify_db):
    sub, secret = subscribe("http://127.0.0.1:9/hook", "*")
    eng = _as(database_url, "quantpipe_api")
    try:
        with eng.connect() as c:
            assert c.execute(text("SELECT name FROM notification_subscriptions WHERE id = :i"),
                             {"i": sub["id"]}).scalar() == "127.0.0.1"
        with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
            with eng.connect() as c:
                c.execute(text("SELECT secret_enc FROM notification_subscriptions"))
    finally:
        eng.dispose()
    with notify_db.connect() as c:  # stored encrypted: the plaintext is nowhere in the row
        stored = c.execute(text("SELECT secret_enc FROM notification_subscriptions")).scalar()
    assert secret.startswith("whsec_") and secret not in stored


def test_a_pool_role_raises_alerts_only_through_the_function(database_url, notify_db):
    from shared_models.notifications import raise_alert

    subscribe("http://127.0.0.1:9/hook", "anomaly.critical")
    eng = _as(database_url, "quantpipe_discovery")
    try:
        with eng.begin() as c:
            assert raise_alert(c, "anomaly.critical", "lp:1", "t", {"a": 1}).deliveries == 1
        for sql in ("SELECT count(*) FROM notification_subscriptions", "SELECT count(*) FROM notification_alerts"):
            with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
                with eng.connect() as c:
                    c.execute(text(sql))
    finally:
        eng.dispose()
    eng = _as(database_url, "quantpipe_app")  # the main app's read role may not raise alerts
    try:
        with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
            with eng.begin() as c:
                raise_alert(c, "anomaly.critical", "lp:2", "t", {})
    finally:
        eng.dispose()
