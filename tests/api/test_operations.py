"""Auth, keys, /health, /metrics, /docs and the database role, against a real uvicorn server."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import text

from tests.api.conftest import as_key, make_key
from tests.support import run_cli


def test_health_no_auth_reports_pools(api_server, workers):
    r = httpx.get(api_server.url + "/health", timeout=30)
    body = r.json()
    assert r.status_code == 200, body
    assert body["status"] == "ok" and body["database"] and body["redis"]
    assert body["schema_revision"] == body["schema_head"]
    from workers.routing import POOLS

    assert set(body["pools"]) == set(POOLS)
    assert all(p["workers"] >= 1 for p in body["pools"].values())
    assert r.headers["cache-control"] == "no-store"


def test_auth_401_403_and_both_headers(client, api_server, keys):
    url = api_server.url + "/metrics"
    r = httpx.get(url)
    assert r.status_code == 401 and r.json()["status"] == "error"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(url, headers=as_key("qp_deadbeef_" + "x" * 43)).status_code == 401
    assert httpx.get(url, headers=as_key("not a key")).status_code == 401
    assert httpx.get(url, headers=as_key(keys["track"])).status_code == 403
    assert httpx.get(url, headers=as_key(keys["read"])).status_code == 200
    assert httpx.get(url, headers={"X-API-Key": keys["read"]}).status_code == 200
    me = httpx.get(api_server.url + "/api/v1/auth/me", headers={"X-API-Key": keys["track"]}).json()
    assert me["scopes"] == ["track"] and me["name"] == "test-track"


def test_cli_create_list_revoke(api_server, session):
    out = run_cli("api-key", "create", "--scope", "read", "--name", "cli-made").stdout
    key = out.strip().splitlines()[-1]
    assert re.fullmatch(r"qp_[a-z0-9]{8}_[A-Za-z0-9_-]{43}", key)
    key_id = key.split("_")[1]
    me = httpx.get(api_server.url + "/api/v1/auth/me", headers=as_key(key))
    assert me.status_code == 200 and me.json()["key_id"] == key_id
    stored = session.execute(text("SELECT key_hash, scopes FROM api_keys WHERE key_id = :k"), {"k": key_id}).one()
    assert key not in stored.key_hash and len(stored.key_hash) == 64 and stored.scopes == ["read"]
    listing = run_cli("api-key", "list").stdout
    assert key_id in listing and key not in listing
    run_cli("api-key", "revoke", key_id)
    r = httpx.get(api_server.url + "/api/v1/auth/me", headers=as_key(key))
    assert r.status_code == 401, "a revoked key must stop working at once"
    assert run_cli("api-key", "revoke", "nosuchid", check=False).returncode == 1
    bad = run_cli("api-key", "create", "--scope", "root", "--name", "x", check=False)
    assert bad.returncode != 0 and "scope" in bad.stderr.lower()


def test_metrics_exposition(api_server, keys, workers):
    r = httpx.get(api_server.url + "/metrics", headers=as_key(keys["read"]), timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    body = r.text
    for name in ("quantpipe_queue_depth{pool=\"ingest\"}", "quantpipe_workers{pool=\"shadow\"}",
                 "quantpipe_ingest_events_per_second", "quantpipe_ingest_stream_entries{state=\"pending\"}",
                 "quantpipe_patterns_heartbeat_age_seconds", "quantpipe_patterns_outbox_backlog",
                 "quantpipe_http_request_duration_seconds_bucket"):
        assert name in body, name
    assert re.search(r'quantpipe_workers\{pool="shadow"\} [1-9]', body)
    assert 'route="/metrics"' in body or 'route="/health"' in body


def test_docs_offline(api_server):
    html = httpx.get(api_server.url + "/docs").text
    external = [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if u.startswith(("http:", "https:", "//"))]
    assert not external, f"/docs loads from outside: {external}"
    assert "swagger" in html.lower()
    for asset in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', html):
        assert httpx.get(api_server.url + asset).status_code == 200, asset
    spec = httpx.get(api_server.url + "/openapi.json").json()
    assert "/shadow/status" in spec["paths"] or "/health" in spec["paths"]


def test_requests_run_as_the_api_role(database_url):
    from api.db import engine

    with engine().connect() as conn:
        user = conn.execute(text("SELECT current_user")).scalar()
        assert user == "quantpipe_api"
        with pytest.raises(Exception, match="permission denied"):
            conn.execute(text("INSERT INTO politicians (key, full_name, chamber) VALUES ('x', 'x', 'house')"))
        conn.rollback()
        with pytest.raises(Exception, match="permission denied"):
            conn.execute(text("INSERT INTO api_keys (key_id, name, scopes, key_hash, created_by) "
                              "VALUES ('x', 'x', '{admin}', 'x', 'x')"))
        conn.rollback()
