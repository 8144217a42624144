"""Seed 004's shadow routes over HTTP: envelope, auth, errors, the trade callback, and a promotion
through the API leaving the same registry as one through the CLI."""

from __future__ import annotations

import numpy as np
from sqlalchemy import text

from tests.api.conftest import as_key
from tests.support import run_cli, wipe_shadow
from tests.workers.shadow.conftest import make_trades, registry_db  # noqa: F401 (fixture)


def _setup_approvable(engine) -> None:
    """champ (1000 trades) and a clearly better chal (600): its first look APPROVES. Written in-process
    through the pool's registry, so no evaluation task is enqueued behind the test's back."""
    from shared_models.db import unit_of_work
    from shared_models.settings import get_settings
    from workers.shadow import registry

    rng = np.random.default_rng(7)
    s = get_settings().shadow
    with unit_of_work() as session:
        champ, _ = registry.deploy(session, "champ", "xgboost", "production ensemble", champion=True)
        chal, _ = registry.deploy(session, "chal", "lightgbm", "test challenger")
        for model, mean, n in ((champ, 0.0005, 1000), (chal, 0.012, 600)):
            registry.record_trades(session, model, make_trades(mean + 0.02 * rng.standard_normal(n),
                                                               prefix=model.name, minutes=3),
                                   source="test", min_trades=s.min_trades, interval=s.check_interval,
                                   horizon=s.max_trades)


def _registry_state(engine) -> dict:
    """Everything a promotion decides, without who did it, when, or how long it took."""
    with engine.connect() as c:
        return {
            "models": c.execute(text("SELECT id, name, model_type, role, allocation FROM shadow_models "
                                     "ORDER BY id")).all(),
            "evaluations": c.execute(text("SELECT challenger_id, champion_id, n_trades, decision, score, "
                                          "metrics FROM shadow_evaluations ORDER BY id")).all(),
            "events": c.execute(text("SELECT event, from_model_id, to_model_id, reason, metrics "
                                     "FROM shadow_promotions ORDER BY id")).all(),
        }


def test_seed_flow_deploy_status_trades_history(client, keys, registry_db):  # noqa: F811
    r = client.post("/shadow/deploy", json={"model_name": "ensemble_xgb_v1", "model_type": "xgboost",
                                            "description": "Current production ensemble (champion)"})
    assert r.status_code == 201 and r.json()["status"] == "success", r.text
    assert r.json()["data"]["role"] == "champion"
    r = client.post("/shadow/deploy", json={"model_name": "lightgbm_test_v1", "model_type": "lightgbm",
                                            "description": "Test challenger for shadow validation"})
    assert r.json()["data"]["role"] == "challenger" and r.json()["data"]["allocation"] == 0
    again = client.post("/shadow/deploy", json={"model_name": "lightgbm_test_v1", "model_type": "lightgbm"})
    assert again.status_code == 200 and again.json()["data"]["created"] is False
    clash = client.post("/shadow/deploy", json={"model_name": "lightgbm_test_v1", "model_type": "xgboost"})
    assert clash.status_code == 422 and clash.json()["field"] == "name"

    trades = make_trades(0.001 + 0.02 * np.random.default_rng(1).standard_normal(40), prefix="x")
    trades[5]["return"] = "abc"
    r = client.post("/shadow/trades/ensemble_xgb_v1", json={"trades": trades}, headers=as_key(keys["track"]))
    assert r.status_code == 200, r.text
    assert r.json()["data"]["inserted"] == 39 and r.json()["data"]["rejected"] == 1
    r = client.post("/shadow/trades/ensemble_xgb_v1", json={"trades": trades}, headers=as_key(keys["track"]))
    assert r.json()["data"]["inserted"] == 0 and r.json()["data"]["duplicates"] == 39  # idempotent by trade id
    assert client.post("/shadow/trades/ghost", json={"trades": trades[:1]},
                       headers=as_key(keys["track"])).status_code == 404

    body = client.get("/shadow/status", headers=as_key(keys["read"])).json()
    assert body["status"] == "success"
    champ, chals = body["data"]["champion"], body["data"]["challengers"]
    assert champ["model_name"] == "ensemble_xgb_v1" and champ["trade_count"] == 39
    assert {"win_rate", "sharpe_ratio"} <= set(champ["metrics"]) and 0 <= champ["metrics"]["win_rate"] <= 1
    assert [c["model_name"] for c in chals] == ["lightgbm_test_v1"]
    assert chals[0]["promotion_status"] == "PENDING" and chals[0]["promotion_score"] == 0.0
    assert chals[0]["trade_count"] == 0 and chals[0]["metrics"]["win_rate"] is None

    cmp_ = client.get("/shadow/comparison/lightgbm_test_v1", headers=as_key(keys["read"])).json()["data"]
    assert cmp_["decision"] == "PENDING" and cmp_["evaluation"] is None and cmp_["champion"] == "ensemble_xgb_v1"
    assert client.get("/shadow/comparison/ghost", headers=as_key(keys["read"])).status_code == 404
    assert client.get("/shadow/comparison/ensemble_xgb_v1", headers=as_key(keys["read"])).status_code == 409
    refused = client.post("/shadow/promote/lightgbm_test_v1")
    assert refused.status_code == 409 and "not promoted" in refused.json()["message"]
    assert client.post("/shadow/promote/lightgbm_test_v1", json={"force": True}).status_code == 422
    forced = client.post("/shadow/promote/lightgbm_test_v1", json={"force": True, "reason": "desk request"})
    assert forced.status_code == 200 and forced.json()["data"]["champion"] == "lightgbm_test_v1"
    rb = client.post("/shadow/rollback", json={"reason": "WR dropped >5pp post-promotion"})
    assert rb.status_code == 200 and rb.json()["data"]["champion"] == "ensemble_xgb_v1"
    assert client.post("/shadow/rollback", json={}).status_code == 422
    hist = client.get("/shadow/history", headers=as_key(keys["read"])).json()["data"]
    assert [h["event"] for h in hist] == ["rollback", "manual"] and hist[1]["actor"] == "api:test-admin"


def test_writes_need_admin(client, keys, registry_db):  # noqa: F811
    read = as_key(keys["read"])
    for method, path, body in (("post", "/shadow/deploy", {"model_name": "m", "model_type": "t"}),
                               ("post", "/shadow/promote/m", None), ("post", "/shadow/rollback", {"reason": "x"})):
        assert getattr(client, method)(path, json=body, headers=read).status_code == 403
        assert getattr(client, method)(path, json=body, headers=as_key(None)).status_code == 401
    assert client.post("/shadow/trades/m", json={"trades": [{}]}, headers=read).status_code == 403


def test_promote_through_api_and_cli_leave_identical_registries(client, engine, registry_db):  # noqa: F811
    _setup_approvable(engine)
    r = client.post("/shadow/promote/chal")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["decision"] == "APPROVED"
    via_api = _registry_state(engine)

    with engine.begin() as c:
        wipe_shadow(c)
    _setup_approvable(engine)
    out = run_cli("shadow", "promote", "chal").stdout
    assert "chal is the champion" in out
    via_cli = _registry_state(engine)

    assert via_api == via_cli
    assert [m.role for m in via_api["models"]] == ["archived", "champion"]
    assert [e.event for e in via_api["events"]] == ["promote"]


def _status(client, keys) -> dict:
    r = client.get("/shadow/status", headers=as_key(keys["read"]))
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_status_snapshot_shows_every_change_on_the_next_request(client, keys, engine, registry_db):  # noqa: F811
    """/shadow/status is cached per registry state: a promote through the CLI (another process), a
    rollback through the API, new trades and a reload of the same trade count are each visible on the
    very next request."""
    _setup_approvable(engine)
    first = _status(client, keys)
    assert first["champion"]["model_name"] == "champ" and first == _status(client, keys)  # served again
    etag = client.get("/shadow/status", headers=as_key(keys["read"])).headers["etag"]
    again = client.get("/shadow/status", headers={**as_key(keys["read"]), "If-None-Match": etag})
    assert again.status_code == 304

    assert "chal is the champion" in run_cli("shadow", "promote", "chal").stdout
    promoted = _status(client, keys)
    assert promoted["champion"]["model_name"] == "chal"
    assert client.get("/shadow/status", headers={**as_key(keys["read"]), "If-None-Match": etag}).status_code == 200

    assert client.post("/shadow/rollback", json={"reason": "snapshot test"}).status_code == 200
    assert _status(client, keys)["champion"]["model_name"] == "champ"

    trades = make_trades(0.001 + 0.02 * np.random.default_rng(5).standard_normal(7), prefix="late", minutes=11)
    r = client.post("/shadow/trades/champ", json={"trades": trades}, headers=as_key(keys["track"]))
    assert r.json()["data"]["inserted"] == 7, r.text
    assert _status(client, keys)["champion"]["trade_count"] == 1007

    # a reload of the same number of trades (same ids) with other returns: still seen at once
    before = _status(client, keys)["champion"]["metrics"]
    cols = "model_id, trade_id, opened_at, closed_at, pnl, shadow, opportunity_id"
    with engine.begin() as c:
        c.execute(text("CREATE TEMP TABLE kept ON COMMIT DROP AS SELECT * FROM shadow_trades"))
        c.execute(text("TRUNCATE shadow_trades RESTART IDENTITY"))
        c.execute(text(f'INSERT INTO shadow_trades ({cols}, "return") '
                       f'SELECT {cols}, -abs("return") FROM kept ORDER BY id'))
    after = _status(client, keys)["champion"]
    assert after["trade_count"] == 1007 and after["metrics"]["win_rate"] == 0 and after["metrics"] != before
