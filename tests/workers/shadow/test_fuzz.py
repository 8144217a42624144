"""Fuzz: 10,000+ generated bad trade rows mixed with valid ones through ``shadow.record_trades`` on a real
shadow worker. 0 worker crashes, 0 stuck queues, every valid row stored, every bad row dead-lettered with
the field it broke."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import text

from shared_models.db import unit_of_work
from workers.shadow import registry, tasks

from .fuzz import batch

GOOD, BAD, EXAMPLES = 10, 50, 205


def _wait(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _unacked(redis_client, queue: str) -> list[str]:
    """Delivery tags of ``queue``'s messages still in kombu's ``unacked`` hash ([message, exchange, key])."""
    return [tag.decode() for tag, v in redis_client.hgetall("unacked").items() if json.loads(v)[2] == queue]


@pytest.mark.slow
def test_fuzz_record_trades_through_a_real_shadow_worker(workers, registry_db, redis_client):
    with unit_of_work() as s:
        registry.deploy(s, "fz", "momentum", champion=True)      # a champion: no evaluation is enqueued
    worker = workers["shadow"]
    pids = worker.pids()
    good_ids: set[str] = set()
    counts = {"bad": 0, "calls": 0}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(batch(GOOD, BAD))
    def one(rows):
        res = tasks.record_trades.delay("fz", [r for r, _ in rows]).get(timeout=60)
        want = [(i, f) for i, (_, f) in enumerate(rows) if f is not None]
        assert [(r["index"], r["field"]) for r in res["rejections"]] == want
        assert all(r["reason"].startswith(r["field"] + ":") for r in res["rejections"])
        assert res["inserted"] == len(rows) - len(want) and res["duplicates"] == 0
        good_ids.update(r["trade_id"] for r, f in rows if f is None)
        counts["bad"] += len(want)
        counts["calls"] += 1

    one()
    assert counts["bad"] >= 10_000, counts
    with registry_db.connect() as c:
        stored = set(c.execute(text("SELECT trade_id FROM shadow_trades t JOIN shadow_models m ON m.id = t.model_id "
                                    "WHERE m.name = 'fz'")).scalars())
        letters = c.execute(text("SELECT count(*) FROM dead_letters WHERE pool = 'shadow' "
                                 "AND source = 'shadow.record_trades'")).scalar()
    assert stored == good_ids                                    # every valid row, nothing else
    assert letters == counts["bad"]                              # every bad row kept
    assert worker.pids() == pids and worker.proc.poll() is None  # no crash, no restarted child
    assert _wait(lambda: not any(redis_client.llen(k) for k in redis_client.scan_iter("shadow*")
                                 if redis_client.type(k) == b"list"))
    assert _wait(lambda: not _unacked(redis_client, "shadow"))  # other pools' kill tests may leave theirs
    assert tasks.ping.delay().get(timeout=30)["pool"] == "shadow"
