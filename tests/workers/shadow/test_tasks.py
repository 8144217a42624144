"""shadow.* tasks on a real Celery worker: record → evaluate → promote, alerts on Redis and in the log."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text

from shared_models.db import unit_of_work
from shared_models.settings import get_settings
from workers.shadow import registry, tasks

from .conftest import make_trades


def _wait(predicate, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def test_recording_trades_enqueues_evaluation_and_promotes(workers, registry_db, redis_client):
    with unit_of_work() as s:
        registry.deploy(s, "champ", "momentum", champion=True)
        registry.deploy(s, "chal", "momentum")
    rng = np.random.default_rng(0)
    pubsub = redis_client.pubsub()
    pubsub.subscribe(get_settings().shadow.alert_channel)
    champ = tasks.record_trades.delay("champ", make_trades(0.0005 + 0.02 * rng.standard_normal(1500),
                                                           prefix="c", minutes=1)).get(timeout=60)
    assert champ["inserted"] == 1500 and not champ["evaluation_enqueued"]
    chal_rows = make_trades(0.01 + 0.02 * rng.standard_normal(500), prefix="s")
    first = tasks.record_trades.delay("chal", chal_rows).get(timeout=60)
    assert first["looks_reached"] == [500] and first["evaluation_enqueued"]
    again = tasks.record_trades.delay("chal", chal_rows).get(timeout=60)      # redelivered batch
    assert again["inserted"] == 0 and again["duplicates"] == 500 and not again["evaluation_enqueued"]

    def champion():
        with registry_db.connect() as c:
            return c.execute(text("SELECT name FROM shadow_models WHERE role='champion'")).scalar() == "chal"

    _wait(champion)
    with registry_db.connect() as c:
        ev = c.execute(text("SELECT event, actor, elapsed_ms FROM shadow_promotions")).one()
        assert ev.event == "promote" and ev.actor == "auto" and ev.elapsed_ms > 0
        assert c.execute(text("SELECT count(*) FROM shadow_evaluations")).scalar() == 1

    def alert():
        msg = pubsub.get_message(timeout=1.0)
        return msg if msg and msg["type"] == "message" else None

    msg = json.loads(_wait(alert, 30)["data"])
    assert msg["level"] == "HIGH" and msg["kind"] == "promotion" and msg["model"] == "chal"
    pubsub.close()
    log = Path(os.environ["QUANTPIPE_LOG_DIR"]) / "shadow_models.log"
    assert "HIGH promotion chal" in log.read_text()
    # the re-run of the same look is a no-op, the monitor has nothing to roll back yet
    assert tasks.evaluate.delay("chal").get(timeout=60)["decision"] == "SKIPPED"
    assert tasks.monitor.delay().get(timeout=60)["decision"] == "OK"


def test_bad_trades_are_dead_lettered_by_the_task(workers, registry_db):
    with unit_of_work() as s:
        registry.deploy(s, "champ", "momentum", champion=True)
    res = tasks.record_trades.delay("champ", [{"trade_id": "a", "opened_at": "2026-01-01T00:00:00",
                                               "closed_at": "2026-01-01T01:00:00", "return": "NaN"}]).get(timeout=60)
    assert res["rejected"] == 1 and res["inserted"] == 0
    with registry_db.connect() as c:
        row = c.execute(text("SELECT field, reason FROM dead_letters WHERE pool='shadow'")).one()
    assert row.field == "return" and "finite" in row.reason


def test_one_bad_row_never_fails_the_task_or_its_good_rows(workers, registry_db):
    with unit_of_work() as s:
        registry.deploy(s, "champ", "momentum", champion=True)
    good = make_trades([0.01, 0.02, -0.01], prefix="g")
    batch = [good[0], 7, {**good[0], "trade_id": "n\x00ul"}, good[1], {**good[1], "trade_id": "b", "shadow": [1]},
             ["a", "list"], good[2]]
    res = tasks.record_trades.delay("champ", batch).get(timeout=60)
    assert (res["inserted"], res["rejected"]) == (3, 4)
    assert [r["field"] for r in res["rejections"]] == ["row", "trade_id", "shadow", "row"]
    ghost = tasks.record_trades.delay("ghost", good).get(timeout=60)      # no such model: kept, not raised
    assert (ghost["inserted"], ghost["rejected"], ghost["evaluation_enqueued"]) == (0, 3, False)
    with registry_db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM shadow_trades")).scalar() == 3
        assert c.execute(text("SELECT count(*) FROM dead_letters WHERE pool='shadow'")).scalar() == 7


def test_disabled_pool_tasks_are_no_ops_with_a_log_line(monkeypatch, registry_db):
    monkeypatch.setenv("ENABLE_SHADOW_MODELS", "false")
    get_settings.cache_clear()
    try:
        out = tasks.evaluate.run("anything")
        assert out["disabled"] and "ENABLE_SHADOW_MODELS=false" in out["message"]
        assert tasks.monitor.run()["disabled"]
        assert tasks.record_trades.run("champ", [])["disabled"] and tasks.evaluate_all.run()["disabled"]
        from workers.shadow.schedule import entries
        assert entries(get_settings()) == {}
        log = Path(os.environ["QUANTPIPE_LOG_DIR"]) / "shadow_models.log"
        assert "shadow pool disabled" in log.read_text()
    finally:
        monkeypatch.delenv("ENABLE_SHADOW_MODELS")
        get_settings.cache_clear()


def test_beat_entries_run_shadow_tasks():
    from workers.beat_schedule import build_schedule
    from workers.shadow.schedule import entries

    e = entries(get_settings())
    assert {v["task"] for v in e.values()} == {"shadow.monitor", "shadow.evaluate_all"}
    assert "shadow:rollback-monitor" in build_schedule(get_settings())
