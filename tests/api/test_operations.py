"""Auth, keys, /health, /metrics, /docs and the database role, against a real uvicorn server."""

from __future__ import annotations

import re
import time

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


def _key_ttl() -> float:
    from shared_models.settings import get_settings

    return get_settings().api.key_cache_seconds


def _refused_within(url: str, key: str, seconds: float) -> bool:
    """Does ``key`` get a 401 within ``seconds`` (the API process may trust it for its cache TTL)?"""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if httpx.get(url, headers=as_key(key)).status_code == 401:
            return True
        time.sleep(0.2)
    return False


def test_revoked_key_served_from_the_cache_is_refused_within_its_ttl(api_server):
    """The key is in the API process's cache (just used, several times); a revocation in the database
    is still honoured within the TTL, on every route."""
    key = make_key("read", name="ttl-check")
    for _ in range(3):
        assert httpx.get(api_server.url + "/api/v1/auth/me", headers=as_key(key)).status_code == 200
        assert httpx.get(api_server.url + "/shadow/history", headers=as_key(key)).status_code == 200
    run_cli("api-key", "revoke", key.split("_")[1])
    assert _refused_within(api_server.url + "/api/v1/auth/me", key, _key_ttl() + 3.0)
    for path in ("/api/v1/auth/me", "/shadow/history", "/api/v1/discoveries/recent"):
        assert httpx.get(api_server.url + path, headers=as_key(key)).status_code == 401, path


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
    assert _refused_within(api_server.url + "/api/v1/auth/me", key, _key_ttl() + 3.0), \
        "a revoked key must stop working within QUANTPIPE_API_KEY_CACHE_SECONDS"
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


def test_async_reads_run_as_the_api_role(database_url):
    """The asyncpg engine of the hot reads takes the same role (from the URL's ``options``)."""
    import asyncio

    from api.db import async_engine

    async def who():
        try:
            async with async_engine().connect() as conn:
                return (await conn.execute(text("SELECT current_user"))).scalar()
        finally:
            await async_engine().dispose()
            async_engine.cache_clear()

    assert asyncio.run(who()) == "quantpipe_api"


def test_asyncpg_args_from_a_libpq_url():
    from api.db import asyncpg_args

    url, args = asyncpg_args("postgresql+psycopg2://u:p@/db?host=%2Ftmp%2Fsock&options=-c%20role%3Dquantpipe_api"
                             "&sslmode=require&application_name=qp&connect_timeout=3")
    assert url.startswith("postgresql+asyncpg://u:p@/db?host=") and "options" not in url and "sslmode" not in url
    assert args == {"server_settings": {"role": "quantpipe_api", "application_name": "qp"}, "ssl": "require",
                    "timeout": 3.0}
