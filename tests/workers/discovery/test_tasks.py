"""Scans on real Celery workers: the chord, idempotent re-runs, and a worker killed mid-scan."""

import os
import time
import uuid

import pytest
from sqlalchemy import text

from celery import chord, group

from tests.support import WorkerProcess
from tests.workers.discovery.helpers import ensure_loaded
from workers.discovery import tasks

SNAPSHOT = {
    "pattern_discoveries": "politician_id, pattern_type, subject, strength, confidence, parameters, description, "
                           "evidence, updated_at",
    "anomaly_detections": "politician_id, anomaly_type, subject, severity, confidence, parameters, description, "
                          "evidence, updated_at",
    "network_discoveries": "network_type, subject, members, strength, confidence, parameters, evidence, updated_at",
    "model_experiments": "model_name, params_hash, metrics, deployment_ready, description, updated_at",
}


def snapshot(engine) -> dict:
    with engine.connect() as c:
        return {t: sorted(map(tuple, c.execute(text(f"SELECT {cols} FROM {t} ORDER BY 1, 2, 3")).all()), key=repr)
                for t, cols in SNAPSHOT.items()}


def clear_findings(engine) -> None:
    with engine.begin() as c:
        c.execute(text("TRUNCATE pattern_discoveries, anomaly_detections, network_discoveries, model_experiments"))


_REFERENCE: dict = {}
VISIBILITY = 26  # s: the kill test's visibility timeout


def _run_chord(ids, timeout=240):
    result = tasks.scan_chord(ids).apply_async()
    return result, result.get(timeout=timeout)


@pytest.fixture(scope="module")
def loaded(engine):
    return ensure_loaded(engine)


@pytest.fixture(scope="module")
def some_ids(engine, loaded):
    """The 8 politicians with the most trades in the test tickers (they exercise every analysis)."""
    with engine.connect() as c:
        return [r[0] for r in c.execute(text(
            "SELECT politician_id::text FROM trades GROUP BY politician_id "
            "ORDER BY count(*) FILTER (WHERE ticker IN ('AAPL','MSFT','T','DIS','BAC','NFLX')) DESC, "
            "politician_id LIMIT 8"))]


def test_scan_politician_on_a_worker_is_idempotent(workers, engine, some_ids):
    clear_findings(engine)
    pid = some_ids[0]
    first = tasks.scan_politician.delay(pid).get(timeout=120)
    assert first["politician_id"] == pid and first["written"] > 0 and first["events_studied"] > 0
    before = snapshot(engine)
    second = tasks.scan_politician.delay(pid).get(timeout=120)
    assert second["written"] == 0
    assert snapshot(engine) == before


def test_bad_politician_id_is_dead_lettered(workers, engine):
    for bad in ("not-an-id", -5, None, ["x"], "x" * 10_000):
        out = tasks.scan_politician.delay(bad).get(timeout=60)
        assert out["error"].startswith("politician_id: expected a UUID string")
    unknown = str(uuid.uuid4())
    out = tasks.scan_politician.delay(unknown).get(timeout=60)
    assert f"no politician with id {unknown}" in out["error"]
    with engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM dead_letters WHERE source = 'discovery.scan_politician' "
                           "AND field = 'politician_id'")).scalar()
    assert n >= 6


def test_a_failing_politician_does_not_cost_the_others_their_network_step(workers, engine, some_ids):
    """A scan over its time limit (20,000 trades, a 1 s soft limit on that task only) is dead-lettered
    and answered as an error; the chord still completes and runs the network step."""
    with engine.begin() as c:
        slow = str(c.execute(text("INSERT INTO politicians (key, full_name, chamber) VALUES (:k, 'Slow Test', "
                                  "'house') RETURNING id"), {"k": f"test:slow:{uuid.uuid4().hex[:8]}"}).scalar())
        c.execute(text("""
            INSERT INTO trades (politician_id, source, row_hash, transaction_date, disclosure_date,
                                disclosure_lag_days, type, amount_min, amount_max, ticker)
            SELECT :p, 'test', 'slow' || g, DATE '2012-03-01' + (g % 3000), DATE '2012-03-01' + (g % 3000) + 10,
                   10, 'purchase', 1001, 15000, (ARRAY['AAPL','MSFT','T','DIS','BAC','NFLX'])[1 + g % 6]
            FROM generate_series(1, 20000) g"""), {"p": slow})
    try:
        # the worker's first task imports the analyses (seconds): not inside the slow task's 1 s
        tasks.scan_politician.delay(some_ids[0]).get(timeout=240)
        header = [tasks.scan_politician.s(slow).set(soft_time_limit=1, time_limit=60),
                  *(tasks.scan_politician.s(i) for i in some_ids[:2])]
        out = chord(group(header), tasks.scan_network.s()).apply_async().get(timeout=240)
        assert out["politicians"] == 3 and out["errors"] == 1 and "network_findings" in out
        with engine.connect() as c:
            reason = c.execute(text("SELECT reason FROM dead_letters WHERE source = 'discovery.scan_politician' "
                                    "AND payload->>'politician_id' = :p"), {"p": slow}).scalar()
        assert reason.startswith("politician_id: scan failed: SoftTimeLimitExceeded")
    finally:
        with engine.begin() as c:
            c.execute(text("DELETE FROM politicians WHERE id = :p"), {"p": slow})


def test_chord_scan_then_rerun_changes_nothing(workers, engine, some_ids):
    clear_findings(engine)
    _, out = _run_chord(some_ids)
    assert out["politicians"] == len(some_ids) and out["errors"] == 0 and out["experiments"] >= 1
    first = snapshot(engine)
    assert first["anomaly_detections"] and first["pattern_discoveries"] and first["model_experiments"]
    _, again = _run_chord(some_ids)
    assert snapshot(engine) == first  # not even updated_at moved
    _REFERENCE["snapshot"] = first


def test_daily_beat_entry_runs_the_full_scan():
    from shared_models.settings import get_settings
    from workers.beat_schedule import build_schedule

    entry = build_schedule(get_settings())["discovery:daily-scan"]
    assert entry["task"] == "discovery.scan_all" and entry["task"] in tasks.app.tasks
    assert entry["schedule"].hour == {get_settings().discovery.scan_hour_utc}


@pytest.mark.slow
def test_worker_killed_mid_scan_then_rerun_gives_identical_findings(workers, engine, some_ids):
    if "snapshot" not in _REFERENCE:  # an uninterrupted scan to compare with
        clear_findings(engine)
        _run_chord(some_ids)
        _REFERENCE["snapshot"] = snapshot(engine)
    reference = _REFERENCE["snapshot"]
    clear_findings(engine)

    workers["discovery"].stop()  # this test's own worker must be the only consumer of the queue
    try:
        # Limits short enough for a quick redelivery, long enough for a first task's imports on a
        # loaded 2-core machine (17 s seen at load 10; 8 s killed the survivor's network step).
        env = {**os.environ, "QUANTPIPE_TASK_SOFT_TIME_LIMIT": "20", "QUANTPIPE_TASK_TIME_LIMIT": "24",
               "QUANTPIPE_VISIBILITY_TIMEOUT": str(VISIBILITY)}
        victim = WorkerProcess("discovery", env=env, name="disc-victim").start()
        try:
            result = tasks.scan_chord(some_ids).apply_async()
            group = result.parent
            deadline = time.monotonic() + 120
            while group.completed_count() < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            done_at_kill = group.completed_count()
            victim.kill()
            assert 0 < done_at_kill < len(some_ids), "the kill must land mid-scan"
        finally:
            victim.stop()
        # kombu scans for unacked messages when the survivor's poller starts, then every ~100 s
        # (every 10th call of a 10 s timer): start it once the killed delivery is well past the
        # visibility timeout, so that first scan returns it to the queue; the 150 s wait below
        # also covers the second scan.
        time.sleep(VISIBILITY + 6)
        with WorkerProcess("discovery", env=env, name="disc-survivor"):
            out = result.get(timeout=150)  # the unacked task is redelivered after the visibility timeout
            assert out["politicians"] == len(some_ids)
            after_kill = snapshot(engine)
            _run_chord(some_ids)
            assert snapshot(engine) == after_kill  # re-run changes nothing
    finally:  # the session's worker serves the tests that follow, even when this one fails
        workers["discovery"].start()
    assert _strip(after_kill) == _strip(reference)  # identical findings to an uninterrupted scan
    with engine.connect() as c:
        for t, kind in (("pattern_discoveries", "pattern_type"), ("anomaly_detections", "anomaly_type")):
            dups = c.execute(text(f"SELECT count(*) - count(DISTINCT (politician_id, {kind}, subject)) "
                                  f"FROM {t}")).scalar()
            assert dups == 0


def _strip(snap: dict) -> dict:
    """Findings without their timestamps (the re-run happened at a different time)."""
    return {t: sorted((row[:-1] for row in rows), key=repr) for t, rows in snap.items()}

