"""Notify-pool fixtures: empty notification tables, settings with short backoffs, receivers."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import text

from .receivers import SmtpServer, WebhookReceiver

TABLES = "notification_attempts, notification_deliveries, notification_alerts, notification_subscriptions"


@pytest.fixture()
def notify_db(engine):
    def wipe():
        with engine.begin() as c:
            c.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
            c.execute(text("DELETE FROM dead_letters WHERE pool = 'notify'"))
    wipe()
    yield engine
    wipe()


def fast(settings=None, **notify):
    """Settings with quick retries (and ``notify`` overrides), for in-process dispatch."""
    from shared_models.settings import get_settings

    s = settings or get_settings()
    base = dict(backoff_seconds=0.1, backoff_cap_seconds=0.4, timeout_seconds=2.0, lease_seconds=5.0)
    return dataclasses.replace(s, notify=dataclasses.replace(s.notify, **{**base, **notify}))


@pytest.fixture()
def notify_engine(database_url):
    """The notify role's engine (the grants of migration 0012 are what is tested)."""
    from workers.notifications.db import engine

    return engine(database_url)


@pytest.fixture()
def receiver():
    with WebhookReceiver() as r:
        yield r


@pytest.fixture()
def smtp():
    with SmtpServer() as s:
        yield s
