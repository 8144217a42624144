"""Patterns over HTTP: detections with filters and pages, flow percentiles, producer health."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import text

from tests.api.conftest import as_key


def _detections(engine, n: int, symbol: str) -> list[str]:
    """n detections of ``symbol`` with a published + received flow each (latency ~ i ms)."""
    now = datetime.now(timezone.utc)
    flows = [str(uuid.uuid4()) for _ in range(n)]
    with engine.begin() as conn:
        for i, flow in enumerate(flows):
            conn.execute(text(
                "INSERT INTO pattern_detections (symbol, pattern, tier, bar_ts, flow_id, confidence, current_price, "
                "price_change, volume, indicators, detected_at, expires_at) VALUES (:s, :p, :t, :b, :f, 0.8, 100, "
                "1.5, 1000, '{}'::jsonb, :d, :e)"),
                {"s": symbol, "p": "Doji" if i % 2 else "Hammer", "t": "daily" if i % 3 else "intraday",
                 "b": now - timedelta(days=n - i), "f": flow, "d": now - timedelta(seconds=n - i),
                 "e": now + timedelta(hours=1)})
            for checkpoint in ("PATTERN_PUBLISHED", "EVENT_RECEIVED"):
                conn.execute(text("SELECT log_integration_event(CAST(:f AS uuid), 'pattern', 'test', :c, NULL, :s, "
                                  "'Doji', 0.8, NULL, NULL)"), {"f": flow, "c": checkpoint, "s": symbol})
    return flows


def test_recent_filters_pages_and_etag(client, keys, engine):
    symbol = "T" + uuid.uuid4().hex[:5].upper()
    _detections(engine, 7, symbol)
    read = {"headers": as_key(keys["read"])}
    r = client.get("/api/v1/patterns/recent", params={"symbol": symbol.lower(), "limit": 3}, **read)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success" and len(body["data"]) == 3 and body["page"]["next_offset"] == 3
    times = [d["detected_at"] for d in body["data"]]
    assert times == sorted(times, reverse=True) and {d["symbol"] for d in body["data"]} == {symbol}
    rest = client.get("/api/v1/patterns/recent", params={"symbol": symbol, "limit": 5, "offset": 3}, **read).json()
    assert len(rest["data"]) == 4 and rest["page"]["next_offset"] is None
    assert {d["id"] for d in rest["data"]}.isdisjoint({d["id"] for d in body["data"]})
    doji = client.get("/api/v1/patterns/recent", params={"symbol": symbol, "pattern": "Doji"}, **read).json()
    assert len(doji["data"]) == 3 and {d["pattern"] for d in doji["data"]} == {"Doji"}
    intraday = client.get("/api/v1/patterns/recent", params={"symbol": symbol, "tier": "intraday"}, **read).json()
    assert len(intraday["data"]) == 3
    etag = r.headers["etag"]
    assert r.headers["cache-control"].startswith("private")
    again = client.get("/api/v1/patterns/recent", params={"symbol": symbol.lower(), "limit": 3},
                       headers={**read["headers"], "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    for bad in ({"tier": "weekly"}, {"limit": 0}, {"limit": 100000}, {"offset": -1}, {"symbol": "A B"}):
        r = client.get("/api/v1/patterns/recent", params=bad, **read)
        assert r.status_code == 422 and r.json()["field"] == next(iter(bad)), (bad, r.text)


def test_flows_percentiles_match_the_view(client, keys, engine):
    _detections(engine, 5, "F" + uuid.uuid4().hex[:5].upper())
    r = client.get("/api/v1/patterns/flows", params={"minutes": 60, "recent": 5}, headers=as_key(keys["read"]))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    with engine.connect() as conn:
        lat = [float(v) for v in conn.execute(text(
            "SELECT total_latency_ms FROM pattern_flow_analysis WHERE start_time > now() - interval '60 minutes' "
            "AND checkpoints_logged >= 2")).scalars()]
    assert data["complete_flows"] == len(lat) >= 5 and len(data["recent"]) == 5
    assert abs(data["latency_ms"]["p50"] - float(np.percentile(lat, 50))) < 1e-6
    assert abs(data["latency_ms"]["p99"] - float(np.percentile(lat, 99))) < 1e-6
    assert data["recent"][0]["flow_path"][0] == "PATTERN_PUBLISHED"


def test_producer_health(client, keys, engine, redis_client):
    from workers.patterns.liveness import beat

    beat(engine, redis_client)
    r = client.get("/api/v1/patterns/health", headers=as_key(keys["read"]))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["producer_alive"] is True and 0 <= data["heartbeat_age_seconds"] < 30
    with engine.connect() as conn:
        unsent = conn.execute(text("SELECT count(*) FROM pattern_outbox WHERE sent_at IS NULL")).scalar()
    assert data["outbox_backlog"] == unsent and data["status"] in ("healthy", "degraded")
    assert client.get("/api/v1/patterns/health", headers=as_key(keys["track"])).status_code == 403
