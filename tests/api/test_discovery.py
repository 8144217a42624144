"""Seed 002's discovery routes on a real server: the shipped disclosures loaded through the loader, a few
politicians scanned by the pool, then shapes, auth, pagination, 404/422 and the one write."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.api.conftest import as_key
from tests.support import ROOT, run_cli


@pytest.fixture(scope="module")
def findings(engine):
    from shared_models.db import unit_of_work
    from shared_models.settings import get_settings
    from workers.discovery.scan import scan_network, scan_politician

    run_cli("data", "load-congress", str(ROOT / "data" / "congress"))
    with engine.connect() as c:
        top = [str(r[0]) for r in c.execute(text(
            "SELECT politician_id FROM trades GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 4"))]
    s = get_settings().discovery
    with unit_of_work() as session:
        for pid in top:
            scan_politician(session, pid, s)
        scan_network(session, s)
    with engine.connect() as c:
        counts = dict(c.execute(text("SELECT 'patterns', count(*) FROM pattern_discoveries UNION ALL "
                                     "SELECT 'anomalies', count(*) FROM anomaly_detections UNION ALL "
                                     "SELECT 'networks', count(*) FROM network_discoveries")).all())
    assert counts["patterns"] and counts["anomalies"] and counts["networks"]
    return {"politicians": top, **counts}


def test_recent_newest_first_with_names_and_pages(client, findings):
    r = client.get("/api/v1/discoveries/recent?limit=3")
    assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
    rows = r.json()
    assert isinstance(rows, list) and len(rows) == min(3, findings["patterns"])
    for row in rows:
        assert {"id", "politician_id", "politician_name", "pattern_type", "strength", "confidence", "parameters",
                "description", "discovery_date"} <= set(row)
        uuid.UUID(row["politician_id"])
        assert row["politician_name"]
    assert [x["discovery_date"] for x in rows] == sorted((x["discovery_date"] for x in rows), reverse=True)
    if findings["patterns"] > 3:
        assert 'rel="next"' in r.headers["link"]
        nxt = client.get("/api/v1/discoveries/recent?limit=3&offset=3").json()
        assert not {x["id"] for x in nxt} & {x["id"] for x in rows}
    strong = client.get("/api/v1/discoveries/recent?limit=500&min_strength=0.5").json()
    assert all(x["strength"] > 0.5 for x in strong)
    kind = rows[0]["pattern_type"]
    assert all(x["pattern_type"] == kind for x in client.get(
        f"/api/v1/discoveries/recent?limit=500&pattern_type={kind}").json())


def test_bad_input_is_422_naming_the_field(client, findings):
    for url, field in (("/api/v1/discoveries/recent?limit=0", "limit"),
                       ("/api/v1/discoveries/recent?limit=501", "limit"),
                       ("/api/v1/discoveries/recent?min_strength=2", "min_strength"),
                       ("/api/v1/anomalies/critical?severity_threshold=abc", "severity_threshold"),
                       ("/api/v1/discoveries/politician/not-a-uuid", "politician_id"),
                       ("/api/v1/politicians?search=" + "x" * 201, "search")):
        r = client.get(url)
        assert r.status_code == 422 and r.json()["field"] == field, (url, r.text)


def test_unknown_ids_are_404(client, findings):
    missing = uuid.uuid4()
    for url in (f"/api/v1/discoveries/politician/{missing}", f"/api/v1/politicians/{missing}"):
        r = client.get(url)
        assert r.status_code == 404 and r.json()["field"] == "politician_id"
    r = client.post("/api/v1/anomalies/999999999/investigated")
    assert r.status_code == 404 and r.json()["field"] == "anomaly_id"


def test_auth(client, keys, findings):
    assert client.get("/api/v1/discoveries/recent", headers=as_key(None)).status_code == 401
    assert client.get("/api/v1/discoveries/recent", headers=as_key(keys["track"])).status_code == 403
    assert client.get("/api/v1/discoveries/recent", headers=as_key(keys["read"])).status_code == 200
    some = client.get("/api/v1/anomalies/critical?severity_threshold=0").json()[0]
    r = client.post(f"/api/v1/anomalies/{some['id']}/investigated", headers=as_key(keys["read"]))
    assert r.status_code == 403


def test_politician_discoveries_and_detail(client, findings):
    pid = findings["politicians"][0]
    rows = client.get(f"/api/v1/discoveries/politician/{pid}").json()
    assert all(x["politician_id"] == pid for x in rows)
    assert [x["strength"] for x in rows] == sorted((x["strength"] for x in rows), reverse=True)
    detail = client.get(f"/api/v1/politicians/{pid}?limit=5").json()
    assert detail["politician"]["id"] == pid and detail["politician"]["trade_count"] > 5
    assert len(detail["trades"]) == 5 and {"ticker", "transaction_date", "disclosure_date", "type"} <= set(
        detail["trades"][0])
    assert {x["id"] for x in detail["patterns"]} == {x["id"] for x in rows}
    ticker = next(t["ticker"] for t in detail["trades"] if t["ticker"])
    only = client.get(f"/api/v1/politicians/{pid}?limit=500&ticker={ticker}").json()["trades"]
    assert only and all(t["ticker"] == ticker for t in only)
    name = detail["politician"]["full_name"]
    found = client.get("/api/v1/politicians", params={"search": name.split()[-1]}).json()
    assert pid in {x["id"] for x in found}


def test_critical_anomalies_and_the_investigated_write(client, engine, findings):
    rows = client.get("/api/v1/anomalies/critical?severity_threshold=0&limit=500").json()
    assert rows and all(not x["investigated"] for x in rows)
    assert [x["severity"] for x in rows] == sorted((x["severity"] for x in rows), reverse=True)
    target = rows[0]
    r = client.post(f"/api/v1/anomalies/{target['id']}/investigated")
    assert r.status_code == 200 and r.json()["investigated"] is True
    assert client.post(f"/api/v1/anomalies/{target['id']}/investigated").status_code == 200  # idempotent
    with engine.connect() as c:
        assert c.execute(text("SELECT investigated FROM anomaly_detections WHERE id = :i"),
                         {"i": target["id"]}).scalar() is True
    after = client.get("/api/v1/anomalies/critical?severity_threshold=0&limit=500").json()
    assert target["id"] not in {x["id"] for x in after}
    r = client.post(f"/api/v1/anomalies/{target['id']}/investigated", json={"investigated": False})
    assert r.status_code == 200 and r.json()["investigated"] is False


def test_networks_and_experiments(client, findings):
    nets = client.get("/api/v1/networks?limit=500").json()
    assert len(nets) == findings["networks"]
    assert all(len(n["members"]) == len(n["member_names"]) >= 2 for n in nets)
    assert [n["strength"] for n in nets] == sorted((n["strength"] for n in nets), reverse=True)
    assert isinstance(client.get("/api/v1/experiments").json(), list)
