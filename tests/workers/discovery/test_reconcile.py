"""A full scan finishes by itself when a task message is lost (issue #9 item 5).

A message can still be lost in Redis (a crash without ``appendfsync always``, a flush, a
failover; stock kombu also lost one SIGKILLed between its pop and its unacked record, which
``workers/broker.py`` closes), and a chord missing a header task never calls back. A scan is therefore a run in PostgreSQL (``workers/discovery/runs.py``); here a
politician's message is deleted from the queue for real, and ``discovery.reconcile`` must
re-send it and finish the run with the findings of a clean scan.
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.support import WorkerProcess
from tests.workers.discovery.test_tasks import _strip, clear_findings, snapshot
from workers.discovery import runs, tasks

GRACE = 4  # seconds without progress before reconcile re-sends (production: > time limit + visibility)


@pytest.fixture()
def some_ids(engine):
    from tests.workers.discovery.helpers import ensure_loaded

    ensure_loaded(engine)
    with engine.connect() as c:
        return [r[0] for r in c.execute(text(
            "SELECT politician_id::text FROM trades WHERE ticker IN ('AAPL','MSFT','T','DIS','BAC','NFLX') "
            "GROUP BY politician_id ORDER BY count(*) DESC, politician_id LIMIT 5"))]


def _run(engine, run_id: str) -> dict:
    with engine.connect() as c:
        return dict(c.execute(text("SELECT * FROM discovery_scan_runs WHERE id = :r"), {"r": run_id}).mappings().one())


def _delete_runs(engine, ids) -> None:
    with engine.begin() as c:
        c.execute(text("DELETE FROM discovery_scan_runs WHERE id = ANY(CAST(:r AS uuid[]))"), {"r": list(ids)})


def _take_one_message(redis_client, run_id: str, timeout: float = 30) -> str:
    """Delete one politician task of this run from the discovery queue (a lost message); its politician."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for raw in redis_client.lrange("discovery", 0, -1):
            headers = json.loads(raw)["headers"]
            if headers["task"] == "discovery.scan_politician" and run_id in headers["argsrepr"]:
                assert redis_client.lrem("discovery", 1, raw) == 1
                return headers["argsrepr"].split("'")[1]
        time.sleep(0.2)
    raise AssertionError("no message of the run in the discovery queue")


def _reconcile_until_done(engine, run_id: str, timeout: float = 240) -> list[dict]:
    """Send discovery.reconcile (the beat's job) every second until the run's network step ran."""
    answers, deadline = [], time.monotonic() + timeout
    while _run(engine, run_id)["network_done_at"] is None:
        assert time.monotonic() < deadline, (_run(engine, run_id), answers)
        answers.append(tasks.reconcile.delay().get(timeout=120))
        time.sleep(1)
    return answers


def test_a_lost_politician_message_is_resent_and_the_run_completes(workers, engine, redis_client, some_ids):
    clear_findings(engine)
    reference = tasks.scan_chord(some_ids).apply_async().get(timeout=240)  # a clean scan (the chord path)
    assert reference["errors"] == 0
    expected = snapshot(engine)
    clear_findings(engine)
    made = []
    workers["discovery"].stop()  # no consumer while the message is taken away
    try:
        started = tasks.start_scan(some_ids)
        run_id = started["run_id"]
        made.append(run_id)
        lost = _take_one_message(redis_client, run_id)
        env = {**os.environ, "DISCOVERY_RECONCILE_GRACE_SECONDS": str(GRACE)}
        with WorkerProcess("discovery", env=env, name="disc-reconcile"):
            answers = _reconcile_until_done(engine, run_id)
            # the network step was sent by the re-sent part, the last to finish (not by the chord)
            assert sum(a["politicians_resent"] for a in answers) >= 1
            with engine.connect() as c:
                part = c.execute(text("SELECT done_at, written, error FROM discovery_scan_parts "
                                      "WHERE run_id = :r AND politician_id = :p"), {"r": run_id, "p": lost}).one()
            assert part.done_at is not None and part.error is None
            run = _run(engine, run_id)
            summary = run["summary"]
            assert summary["politicians"] == len(some_ids) and summary["errors"] == 0
            assert summary["network_findings"] == reference["network_findings"]
            after = snapshot(engine)
            assert _strip(after) == _strip(expected)

            # every part done but the network step lost: reconcile sends it; a duplicate changes nothing
            with Session(engine) as s, s.begin():
                second = runs.start(s, some_ids)
                made.append(second)
                s.execute(text("UPDATE discovery_scan_parts SET done_at = now() - interval '1 hour', written = 0 "
                               "WHERE run_id = :r"), {"r": second})
                s.execute(text("UPDATE discovery_scan_runs SET started_at = now() - interval '1 hour', "
                               "network_sent_at = now() - interval '1 hour' WHERE id = :r"), {"r": second})
            answers = _reconcile_until_done(engine, second)
            assert sum(a["networks_sent"] for a in answers) >= 1
            assert snapshot(engine) == after  # not even updated_at moved
            assert _run(engine, second)["summary"]["politicians"] == len(some_ids)
            assert tasks.scan_network.delay(run_id=second).get(timeout=120) == _run(engine, second)["summary"]
    finally:
        workers["discovery"].start()
        _delete_runs(engine, made)


def test_exactly_one_of_two_parts_finishing_together_claims_the_network_step(engine, some_ids):
    """The run's row lock serializes the claim: the second part waits for the first's commit and
    sees its part done, so exactly one sends the network step, whatever the timing."""
    pids = some_ids[:2]
    with Session(engine) as s, s.begin():
        run_id = runs.start(s, pids)
    try:
        claims: dict = {}
        first = Session(engine)
        first.begin()
        claims["first"] = runs.finish_part(first, run_id, pids[0], 1, None)

        def second() -> None:
            with Session(engine) as s, s.begin():
                claims["second"] = runs.finish_part(s, run_id, pids[1], 1, None)

        t = threading.Thread(target=second)
        t.start()
        t.join(1.0)
        assert t.is_alive(), "the second part must wait for the run's row lock"
        first.commit()
        first.close()
        t.join(30)
        assert claims == {"first": False, "second": True}
        with Session(engine) as s, s.begin():  # a redelivered part changes nothing and claims nothing
            assert runs.finish_part(s, run_id, pids[0], 99, None) is False
            assert runs.totals(s, run_id) == {"politicians": 2, "done": 2, "errors": 0, "written": 2}
            assert run_id not in dict(runs.overdue(s, 3600))  # fresh: not stalled
    finally:
        _delete_runs(engine, [run_id])


def test_reconcile_leaves_a_draining_run_alone_and_resends_a_stalled_one(engine, some_ids):
    with Session(engine) as s, s.begin():
        run_id = runs.start(s, some_ids[:3])
        runs.finish_part(s, run_id, some_ids[0], 1, None)
    try:
        with Session(engine) as s, s.begin():
            assert run_id not in {r for r, _ in runs.overdue(s, 60)}
        with engine.begin() as c:
            c.execute(text("UPDATE discovery_scan_runs SET started_at = now() - interval '2 minutes' WHERE id = :r"),
                      {"r": run_id})
            c.execute(text("UPDATE discovery_scan_parts SET done_at = now() - interval '2 minutes' "
                           "WHERE run_id = :r AND done_at IS NOT NULL"), {"r": run_id})
        with Session(engine) as s, s.begin():
            todo = dict(runs.overdue(s, 60))
        assert sorted(todo[run_id]) == sorted(some_ids[1:3])
        with Session(engine) as s, s.begin():  # stamped: not re-sent again within the grace period
            assert run_id not in dict(runs.overdue(s, 60))
    finally:
        _delete_runs(engine, [run_id])


def test_beat_runs_reconcile_on_its_setting():
    from shared_models.settings import get_settings
    from workers.beat_schedule import build_schedule

    entry = build_schedule(get_settings())["discovery:reconcile"]
    assert entry["task"] == "discovery.reconcile" and entry["task"] in tasks.app.tasks
    assert entry["schedule"] == get_settings().discovery.reconcile_seconds
    s = get_settings()
    assert tasks.reconcile_grace(s) > s.task_time_limit + s.visibility_timeout


def test_a_chord_of_the_old_shape_still_completes(workers, some_ids):
    """A chord sent before ``scan_chord`` ran the network step as a header task (still in Redis
    across an upgrade): ``discovery.scan_network`` as its callback adds the results up."""
    from celery import chord, group

    out = chord(group(tasks.scan_politician.s(i) for i in some_ids[:2]),
                tasks.scan_network.s()).apply_async().get(timeout=240)
    assert out["politicians"] == 2 and out["errors"] == 0 and "network_findings" in out
    assert out["findings_written"] >= out["written"]
