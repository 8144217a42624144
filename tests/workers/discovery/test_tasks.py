"""Scans on real Celery workers: the chord, idempotent re-runs, and a worker killed mid-scan."""

import json
import os
import signal
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
    """A scan over its time limit (60,000 trades, a 1 s soft limit on that task only) is dead-lettered
    and answered as an error; the chord still completes and runs the network step. (20,000 trades took
    1.5 s in-process at load 3 once the scan got faster: too close to the limit on a quiet machine.)"""
    with engine.begin() as c:
        slow = str(c.execute(text("INSERT INTO politicians (key, full_name, chamber) VALUES (:k, 'Slow Test', "
                                  "'house') RETURNING id"), {"k": f"test:slow:{uuid.uuid4().hex[:8]}"}).scalar())
        c.execute(text("""
            INSERT INTO trades (politician_id, source, row_hash, transaction_date, disclosure_date,
                                disclosure_lag_days, type, amount_min, amount_max, ticker)
            SELECT :p, 'test', 'slow' || g, DATE '2012-03-01' + (g % 3000), DATE '2012-03-01' + (g % 3000) + 10,
                   10, 'purchase', 1001, 15000, (ARRAY['AAPL','MSFT','T','DIS','BAC','NFLX'])[1 + g % 6]
            FROM generate_series(1, 60000) g"""), {"p": slow})
    try:
        # the worker's first task imports the analyses (seconds): not inside the slow task's 1 s
        tasks.scan_politician.delay(some_ids[0]).get(timeout=240)
        header = [tasks.scan_politician.s(slow).set(soft_time_limit=1, time_limit=60),
                  *(tasks.scan_politician.s(i) for i in some_ids[:2])]
        # the shape of tasks.scan_chord: the network step as a header task, the callback adds up
        out = chord(group([tasks.scan_cross.s(), *header]), tasks.scan_finish.s()).apply_async().get(timeout=240)
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
def test_worker_killed_mid_scan_then_rerun_gives_identical_findings(workers, engine, redis_client, some_ids):
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
            done_at_kill = _kill_mid_task(victim, result.parent, redis_client)
            assert 0 < done_at_kill < len(some_ids), "the kill must land mid-scan"
        finally:
            victim.stop()
        # kombu scans for unacked messages when the survivor's poller starts, then every 10 s
        # (celeryconfig: unacked_restore_interval 10, throttle 1): start it once the killed delivery
        # is past the visibility timeout, so that first scan returns it to the queue.
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


def _accounted(redis_client, header: list[str]) -> tuple[bool, str | None]:
    """(every header task queued, recorded as unacked or done; the id of a STARTED task recorded as unacked)."""
    queued = {json.loads(m)["headers"]["id"] for k in ("discovery", *(f"discovery\x06\x16{p}" for p in (3, 6, 9)))
              for m in redis_client.lrange(k, 0, -1)}
    unacked = {h["id"] for h in (json.loads(v)[0]["headers"] for v in redis_client.hvals("unacked"))
               if h["task"].startswith("discovery.")}
    states = {t: json.loads(v)["status"] if v else None
              for t, v in zip(header, redis_client.mget([f"celery-task-meta-{t}" for t in header]))}
    running = next((t for t in header if states[t] == "STARTED" and t in unacked), None)
    return all(t in queued or t in unacked or states[t] == "SUCCESS" for t in header), running


def _kill_mid_task(victim, group, redis_client, timeout: float = 120) -> int:
    """SIGKILL the victim while it runs a header task after the first one finished, at a moment when
    each header task is queued, unacked or done; returns how many were done.

    Not at an arbitrary moment: stock kombu pops a message (BRPOP) and records it as unacked in a
    second round trip, and killing at the first completed task hit that window (the worker acks and
    fetches the next message at that very moment): seen with MONITOR, BRPOP sent 0.7 ms before the
    kill, no ZADD/HSET after, the message in neither the queue nor ``unacked``. workers/broker.py
    now holds such a message in an inflight list (tests/workers/test_broker.py kills in exactly that
    window). This test is about a delivery killed while it runs, which acks_late +
    reject_on_worker_lost + the visibility timeout must bring back, so the worker is stopped
    (SIGSTOP) once a header task is STARTED, Redis executes whatever it sent before stopping, and
    it is killed only if nothing is in flight; otherwise it continues (SIGCONT) and the next task
    is tried."""
    header = [r.id for r in group.results]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = group.completed_count()
        if done >= 1 and _accounted(redis_client, header)[1] is not None:
            os.killpg(victim.proc.pid, signal.SIGSTOP)
            time.sleep(0.2)  # a command the worker sent before it stopped is executed by now
            complete, running = _accounted(redis_client, header)
            if complete and running is not None:
                done = group.completed_count()
                victim.kill()
                return done
            os.killpg(victim.proc.pid, signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError("no moment to kill the worker mid-task")


def _strip(snap: dict) -> dict:
    """Findings without their timestamps (the re-run happened at a different time)."""
    return {t: sorted((row[:-1] for row in rows), key=repr) for t, rows in snap.items()}



def test_load_closes_equals_a_plain_query_in_either_row_order(engine, loaded, monkeypatch):
    """The binary COPY reader against a plain SELECT, then with the fast query's rows in another
    order, as a planner may give them: the order check must fall back to the sorted query."""
    import numpy as np
    import pandas as pd
    from sqlalchemy.orm import Session

    from workers.discovery import scan

    windows = pd.DataFrame({"symbol": ["AAPL", "MSFT", "NFLX", "T"],
                            "start": pd.to_datetime(["2015-01-05", "2016-03-01", "2030-01-01", "2012-01-01"], utc=True),
                            "end": pd.to_datetime(["2015-06-30", "2016-03-31", "2030-12-31", "2019-12-31"], utc=True)})
    with Session(engine) as s:
        want = {}
        for sym, start, end in windows.itertuples(index=False):
            rows = s.execute(text("SELECT (extract(epoch FROM ts)::bigint / 86400), close FROM market_bars "
                                  "WHERE symbol = :s AND timeframe = '1d' AND ts BETWEEN :a AND :b ORDER BY ts"),
                             {"s": sym, "a": start, "b": end}).all()
            if rows:
                want[sym] = (np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=float))
        assert set(want) == {"AAPL", "MSFT", "T"}  # NFLX's window has no bars: no entry

        def same(got):
            return set(got) == set(want) and all(np.array_equal(got[k][0], want[k][0])
                                                 and np.array_equal(got[k][1], want[k][1]) for k in want)

        assert same(scan.load_closes(s, windows))
        reversed_sql = scan._CLOSES_SQL["sorted"].replace("ORDER BY w.n, b.ts", "ORDER BY w.n DESC, b.ts DESC")
        assert reversed_sql != scan._CLOSES_SQL["sorted"]
        monkeypatch.setitem(scan._CLOSES_SQL, "lateral", reversed_sql)
        assert same(scan.load_closes(s, windows))
