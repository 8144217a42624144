"""The notification admin routes on a real ``quantpipe api`` (uvicorn subprocess), with a real notify worker."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import as_key
from tests.support import WorkerProcess
from tests.workers.notifications.conftest import notify_db  # noqa: F401 - fixture
from tests.workers.notifications.receivers import WebhookReceiver
from workers.notifications import signing

BASE = "/api/v1/notifications"


@pytest.fixture()
def notify_worker():
    with WorkerProcess("notify", name="notify-api") as w:
        yield w


def test_subscribe_test_history_remove(client, notify_db, notify_worker):  # noqa: F811
    with WebhookReceiver() as rx:
        r = client.post(BASE + "/subscriptions", json={"url": rx.url, "events": ["shadow.*"], "format": "slack",
                                                        "min_priority": "high", "name": "ops channel"})
        assert r.status_code == 201, r.text
        created = r.json()["data"]
        sub, secret = created["subscription"], created["secret"]
        assert secret.startswith("whsec_") and sub["events"] == ["shadow.promotion", "shadow.manual_review",
                                                                  "shadow.rollback", "shadow.degradation"]
        listed = client.get(BASE + "/subscriptions")
        assert listed.status_code == 200 and secret not in listed.text
        assert [s["name"] for s in listed.json()["data"]] == ["ops channel"]
        t = client.post(f"{BASE}/subscriptions/{sub['id']}/test", params={"wait": 30})
        assert t.status_code == 200, t.text
        d = t.json()["data"]
        assert d["status"] == "delivered" and d["attempt_log"][0]["http_status"] == 200
        [req] = rx.requests
        assert req.headers["x-quantpipe-signature"] == signing.signature(secret, req.body)
        assert req.key == d["idempotency_key"] and "Test alert from quantpipe" in req.json["text"]
        hist = client.get(BASE + "/deliveries", params={"subscription_id": sub["id"], "limit": 1}).json()
        assert hist["data"][0]["id"] == d["id"] and hist["page"]["next_offset"] is None
        assert client.get(f"{BASE}/deliveries/{d['id']}").json()["data"]["attempts"] == 1
        gone = client.delete(f"{BASE}/subscriptions/{sub['id']}")
        assert gone.status_code == 200 and gone.json()["data"]["active"] is False
        assert client.get(BASE + "/subscriptions").json()["data"] == []


def test_auth_and_errors(client, api_server, keys, notify_db):  # noqa: F811
    url = api_server.url + BASE + "/subscriptions"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=as_key(keys["read"])).status_code == 403
    assert httpx.post(url, json={"url": "http://x.test/h", "events": ["*"]},
                      headers=as_key(keys["track"])).status_code == 403
    bad = client.post(BASE + "/subscriptions", json={"url": "http://x.test/h", "events": ["shadow.nope"]})
    assert bad.status_code == 422 and bad.json()["field"] == "events"
    bad = client.post(BASE + "/subscriptions", json={"url": "gopher://x", "events": ["*"]})
    assert bad.status_code == 422 and bad.json()["field"] == "url"
    bad = client.post(BASE + "/subscriptions", json={"url": "http://x.test/h", "events": ["*"], "extra": 1})
    assert bad.status_code == 422 and bad.json()["field"] == "extra"
    assert client.delete(BASE + "/subscriptions/999999").status_code == 404
    assert client.post(BASE + "/subscriptions/999999/test", params={"wait": 0}).status_code == 404
    assert client.get(BASE + "/deliveries/999999").status_code == 404
