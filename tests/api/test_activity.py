"""Activity tracking over HTTP: the same validation, idempotency and results as the Python client."""

from __future__ import annotations

import uuid

from tests.api.conftest import as_key
from tests.workers.ingestion.helpers import new_user, wait_for_events


def drain():
    from workers.app import app

    return app.tasks["ingest.drain"].apply_async(ignore_result=False).get(timeout=120)


def test_track_one_and_batch_then_profile(client, keys, workers, engine):
    user = new_user()
    track = {"headers": as_key(keys["track"])}
    r = client.post("/api/v1/events", json={"user_id": user, "entity_id": "AAPL", "action": "trade",
                                            "metadata": {"type": "buy", "quantity": 100}}, **track)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "success" and r.json()["data"]["accepted"] == 1
    fixed = str(uuid.uuid4())
    batch = [{"user_id": user, "entity_id": "MSFT", "action": "view", "event_id": fixed}] * 3 + \
        [{"user_id": str(user), "entity_id": "nvda", "action": "watchlist_add"}]
    r = client.post("/api/v1/events", json={"events": batch}, **track)
    assert r.status_code == 202, r.text
    assert r.json()["data"]["event_ids"][:3] == [fixed] * 3
    drain()
    assert wait_for_events(engine, [user], 3) == 3, "a resent event_id is stored once"
    prof = client.get(f"/api/v1/profiles/{user}", **track)
    assert prof.status_code == 200
    lib = {e["entity_id"]: e for e in prof.json()["data"]["library"]}
    assert set(lib) == {"AAPL", "MSFT", "NVDA"} and lib["MSFT"]["event_count"] == 1


def test_bad_events_are_422_naming_the_field(client, keys):
    track = {"headers": as_key(keys["track"])}
    r = client.post("/api/v1/events", json={"user_id": 1, "entity_id": "AAPL; DROP", "action": "view"}, **track)
    assert r.status_code == 422 and r.json()["field"] == "entity_id", r.text
    r = client.post("/api/v1/events", json={"events": [{"user_id": 1, "entity_id": "A", "action": "view"},
                                                       {"user_id": 1, "entity_id": "B", "action": "nope"}]}, **track)
    assert r.status_code == 422 and r.json()["field"] == "events[1].action", r.text
    r = client.post("/api/v1/events", json={"user_id": 1, "action": "view"}, **track)
    assert r.status_code == 422 and "entity_id" in r.text
    r = client.post("/api/v1/events", content=b"{not json", headers={**track["headers"],
                                                                     "Content-Type": "application/json"})
    assert r.status_code == 422
    assert client.post("/api/v1/events", json={"events": []}, **track).status_code == 422
    assert client.post("/api/v1/events", json={"user_id": 1, "entity_id": "A", "action": "view"},
                       headers=as_key(keys["read"])).status_code == 403


def test_login_verify_confirm_and_erasure(client, keys, workers, engine):
    user = new_user()
    track = {"headers": as_key(keys["track"])}
    ctx = {"ip_address": "203.0.113.9", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
           "device_fingerprint": "dev-1"}
    r = client.post("/api/v1/logins/verify", json={"user_id": user, "request_context": ctx}, **track)
    assert r.status_code == 200, r.text
    result = r.json()["data"]
    assert 0 <= result["trust_score"] <= 1 and result["action"] in ("allow", "monitor", "require_mfa", "block")
    r = client.post("/api/v1/logins/confirm", json={"user_id": user, "attempt_id": result["attempt_id"],
                                                    "success": True}, **track)
    assert r.status_code == 200 and r.json()["data"]["already_confirmed"] is False
    again = client.post("/api/v1/logins/confirm", json={"user_id": user, "attempt_id": result["attempt_id"],
                                                        "success": True}, **track)
    assert again.json()["data"]["already_confirmed"] is True
    missing = client.post("/api/v1/logins/confirm", json={"user_id": user, "attempt_id": str(uuid.uuid4()),
                                                          "success": True}, **track)
    assert missing.status_code == 404
    assert client.post("/api/v1/logins/confirm", json={"user_id": user, "attempt_id": "x", "success": True},
                       **track).status_code == 422
    client.post("/api/v1/events", json={"user_id": user, "entity_id": "TSLA", "action": "view"}, **track)
    drain()
    wait_for_events(engine, [user], 1)
    r = client.delete(f"/api/v1/users/{user}", **track)
    assert r.status_code == 200 and sum(r.json()["data"]["deleted"].values()) >= 2, r.text
    assert client.get(f"/api/v1/profiles/{user}", **track).json()["data"]["library"] == []
    assert client.delete(f"/api/v1/users/{user}", **track).status_code == 200  # idempotent


def test_admin_usage(client, keys):
    assert client.get("/api/v1/admin/usage", headers=as_key(keys["track"])).status_code == 403
    r = client.get("/api/v1/admin/usage?top=3")
    assert r.status_code == 200
    data = r.json()["data"]
    assert {"users", "events", "events_per_user", "top_users", "top_entities", "license", "cache"} <= set(data)
    assert len(data["top_entities"]) <= 3 and "hit_rate" in str(data["cache"])


def test_string_and_uuid_user_ids_over_http(client, keys):
    """An app's string/UUID ids (seed 000's current_user.id) through the API, and in the admin
    activity page's step-ups (its user_id was typed int: a 500 once such an id stepped up)."""
    track = {"headers": as_key(keys["track"])}
    users = [f"auth0|{uuid.uuid4().hex[:24]}", str(uuid.uuid4()).upper()]
    for user in users:
        r = client.post("/api/v1/logins/verify", json={"user_id": user, "request_context": {
            "ip_address": "198.51.100.201", "user_agent": "curl/8.0", "device_fingerprint": "d-new"}}, **track)
        assert r.status_code == 200 and r.json()["data"]["action"] == "require_mfa", r.text
        assert client.get(f"/api/v1/profiles/{user}", **track).status_code == 200
    page = client.get("/api/v1/admin/activity", params={"minutes": 5, "recent": 200},
                      headers=as_key(keys["read"]))
    assert page.status_code == 200, page.text
    shown = {u["user_id"] for u in page.json()["data"]["recent_step_ups"]}
    assert users[0] in shown and users[1].lower() in shown
