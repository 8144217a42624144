"""Backtest jobs from the consumer's channel: validation, real-worker run, progress, results, cancel."""

import json
import time
import uuid

import numpy as np
import pandas as pd
from sqlalchemy import text

from loaders.prices import read_price_file
from tests.workers.patterns.helpers import ROOT, load_daily
from workers.patterns.backtest import PROGRESS_CHANNEL, RESULTS_CHANNEL, symbol_trades
from workers.patterns.listener import CANCEL_CHANNEL, JOB_CHANNEL, handle


def _messages(sub, until, timeout=60):
    out, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = sub.get_message(timeout=0.2)
        if m and m["type"] == "message":
            out.append((m["channel"].decode(), json.loads(m["data"])))
            if until(out):
                break
    return out


def test_trade_returns_follow_the_stated_rule():
    frame = read_price_file(ROOT / "data/prices/daily/AAPL.csv.gz").bars
    trades = symbol_trades(frame, pd.Timestamp("2020-01-01").to_pydatetime(),
                           pd.Timestamp("2020-12-31").to_pydatetime(), ["Gap_Up"], 5)
    close = frame["close"].to_numpy()
    dates = frame["ts"].dt.strftime("%Y-%m-%d").tolist()
    i = dates.index("2020-01-29")  # a hand-checked Gap_Up (see test_custom)
    assert close[i + 5] / close[i] - 1 in trades["Gap_Up"]
    assert np.all(np.abs(trades["Gap_Up"]) < 0.5)


def test_backtest_job_runs_on_worker_and_publishes_progress_and_results(workers, engine, redis_client):
    from workers.patterns.tasks import backtest

    load_daily(engine, "AAPL", "MSFT")
    job_id = f"bt-{uuid.uuid4().hex[:8]}"
    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(PROGRESS_CHANNEL, RESULTS_CHANNEL)
    try:
        msg = {"type": "backtest_job", "job_id": job_id, "user_id": 7, "symbols": ["AAPL", "MSFT"],
               "start_date": "2020-01-01", "end_date": "2020-12-31", "patterns": ["Gap_Up", "Engulfing"],
               "parameters": {"hold_bars": 5}}
        assert handle(engine, redis_client, JOB_CHANNEL, json.dumps(msg), lambda j: backtest.delay(j)) == "queued"
        assert handle(engine, redis_client, JOB_CHANNEL, json.dumps(msg), lambda j: backtest.delay(j)) == "duplicate"
        got = _messages(sub, lambda out: any(ch == RESULTS_CHANNEL for ch, _ in out))
    finally:
        sub.close()
    progress = [m for ch, m in got if ch == PROGRESS_CHANNEL]
    results = [m for ch, m in got if ch == RESULTS_CHANNEL]
    assert [p["current_symbol"] for p in progress] == ["AAPL", "MSFT"]
    assert [p["progress"] for p in progress] == [0.5, 1.0]
    for p in progress:
        assert set(p) == {"job_id", "progress", "current_symbol", "estimated_completion"}
        assert type(p["estimated_completion"]) is float
    res = results[0]
    assert res["job_id"] == job_id and res["status"] == "completed"
    r = res["results"]
    assert r["total_trades"] == sum(v["trades"] for v in r["patterns"].values()) > 0
    assert set(r["patterns"]) <= {"Gap_Up", "Engulfing"} and 0 <= r["win_rate"] <= 1
    assert isinstance(r["avg_return"], float)
    with engine.connect() as c:
        assert c.execute(text("SELECT status, progress FROM backtest_jobs WHERE job_id = :j"),
                         {"j": job_id}).one() == ("completed", 1.0)


def test_bad_request_is_dead_lettered_and_answered_and_cancel_stops_a_job(engine, redis_client):
    from workers.patterns.backtest import run_job

    sub = redis_client.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(RESULTS_CHANNEL)
    try:
        bad = {"type": "backtest_job", "job_id": "bt-bad", "symbols": ["AAPL"], "start_date": "2020-01-01"}
        assert handle(engine, redis_client, JOB_CHANNEL, json.dumps(bad), lambda j: None) == "rejected"
        got = _messages(sub, lambda out: True, timeout=5)
        assert got[0][1]["status"] == "failed" and got[0][1]["error"].startswith("end_date")
        with engine.connect() as c:
            assert c.execute(text("SELECT field FROM dead_letters WHERE source = :s ORDER BY id DESC LIMIT 1"),
                             {"s": f"listener:{JOB_CHANNEL}"}).scalar() == "end_date"
        job = {"type": "backtest_job", "job_id": "bt-cancel", "symbols": ["AAPL"], "start_date": "2020-01-01",
               "end_date": "2020-06-30"}
        queued = []
        assert handle(engine, redis_client, JOB_CHANNEL, json.dumps(job), queued.append) == "queued"
        assert handle(engine, redis_client, CANCEL_CHANNEL, json.dumps({"job_id": "bt-cancel"}), None) == "cancelled"
        out = run_job(engine, redis_client, queued[0])
        assert out["status"] == "failed" and out["error"] == "cancelled"
    finally:
        sub.close()
