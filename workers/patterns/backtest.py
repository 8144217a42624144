"""Backtests of patterns over stored daily bars, requested by the consumer on Redis.

Trade rule (kept simple and stated, so results are comparable across jobs): at every
detection of a requested pattern, enter at that bar's close in the pattern's
direction (neutral patterns are taken long) and exit ``hold_bars`` bars later at the
close (``parameters.hold_bars``, default 5). Return = direction * (exit/entry - 1).
win_rate = share of trades with a positive return; avg_return is the mean return.

Progress (flat: job_id, progress 0..1, current_symbol, estimated_completion epoch)
goes to ``tickstock.events.backtesting.progress`` after each symbol; the result
(flat: job_id, status completed/failed, results{...}) to ``...results``. A job is
cancelled by ``tickstock.jobs.cancel``: the listener marks it, and the run stops at
the next symbol and reports status ``failed`` with error ``cancelled``.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select, update

from shared_models.models import MarketBar
from shared_models.models.patterns import BacktestJob as Job

from .detection import bars_from_frame, scan_hits

PROGRESS_CHANNEL = "tickstock.events.backtesting.progress"
RESULTS_CHANNEL = "tickstock.events.backtesting.results"
def symbol_trades(frame: pd.DataFrame, start: datetime, end: datetime, patterns: list[str],
                  hold: int) -> dict[str, np.ndarray]:
    """pattern -> array of trade returns for one symbol (entries between start and end)."""
    if len(frame) <= hold:
        return {}
    ts = pd.to_datetime(frame["ts"], utc=True).dt.tz_convert(None).to_numpy()
    first = int(np.searchsorted(ts, np.datetime64(start), "left"))
    bars = bars_from_frame(frame)
    close = bars.close
    out: dict[str, np.ndarray] = {}
    for name, direction, idx, _conf, ind in scan_hits(bars, first, patterns):
        keep = (idx + hold < len(close)) & (ts[idx] <= np.datetime64(end))
        idx_k = idx[keep]
        if idx_k.size == 0:
            continue
        sign = np.sign(ind["talib_value"][keep]) if "talib_value" in ind else np.full(idx_k.size, direction)
        sign = np.where(sign == 0, 1, sign)
        out[name] = sign * (close[idx_k + hold] / close[idx_k] - 1)
    return out


def summarize(trades: dict[str, list[np.ndarray]]) -> dict:
    per = {}
    every = []
    for name, parts in sorted(trades.items()):
        r = np.concatenate(parts)
        every.append(r)
        per[name] = {"trades": int(r.size), "win_rate": round(float((r > 0).mean()), 4),
                     "avg_return": round(float(r.mean()), 6)}
    allr = np.concatenate(every) if every else np.array([])
    return {"win_rate": round(float((allr > 0).mean()), 4) if allr.size else 0.0,
            "total_trades": int(allr.size),
            "avg_return": round(float(allr.mean()), 6) if allr.size else 0.0,
            "patterns": per}


def _status(engine: Engine, job_id: str) -> tuple[str, dict, dict | None] | None:
    with engine.connect() as conn:
        row = conn.execute(select(Job.status, Job.request, Job.results).where(Job.job_id == job_id)).one_or_none()
    return tuple(row) if row else None


def _finish(engine: Engine, redis_client, job_id: str, status: str, results: dict | None, error: str | None) -> dict:
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.job_id == job_id).values(
            status=status, results=results, error=error, updated_at=func.now(),
            progress=1.0 if status == "completed" else Job.progress))
    msg = {"job_id": job_id, "status": "completed" if status == "completed" else "failed",
           "results": results or {}, "timestamp": time.time()}
    if error:
        msg["error"] = error
    redis_client.publish(RESULTS_CHANNEL, json.dumps(msg))
    return msg


def run_job(engine: Engine, redis_client, job_id: str) -> dict:
    """Run (or re-announce, if already finished) a stored job; idempotent."""
    state = _status(engine, job_id)
    if state is None:
        raise ValueError(f"job_id: unknown backtest job {job_id!r}")
    status, req, results = state
    if status in ("completed", "failed", "cancelled"):
        return _finish(engine, redis_client, job_id, status, results, None if status == "completed" else status)
    start, end = pd.Timestamp(req["start_date"]).to_pydatetime(), pd.Timestamp(req["end_date"]).to_pydatetime()
    hold, symbols = req["parameters"]["hold_bars"], req["symbols"]
    trades: dict[str, list[np.ndarray]] = {}
    t0 = time.time()
    for i, symbol in enumerate(symbols):
        if _status(engine, job_id)[0] == "cancelled":
            return _finish(engine, redis_client, job_id, "cancelled", None, "cancelled")
        b = MarketBar
        with engine.connect() as conn:
            frame = pd.read_sql(select(b.ts, b.open, b.high, b.low, b.close, b.volume).where(
                b.symbol == symbol, b.timeframe == "1d",
                b.ts <= pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=hold * 2 + 5)).order_by(b.ts), conn)
        for name, r in symbol_trades(frame, start, end, req["patterns"], hold).items():
            trades.setdefault(name, []).append(r)
        done = (i + 1) / len(symbols)
        elapsed = time.time() - t0
        with engine.begin() as conn:
            conn.execute(update(Job).where(Job.job_id == job_id, Job.status != "cancelled").values(
                status="running", progress=done, updated_at=func.now()))
        redis_client.publish(PROGRESS_CHANNEL, json.dumps({
            "job_id": job_id, "progress": round(done, 4), "current_symbol": symbol,
            "estimated_completion": time.time() + elapsed / (i + 1) * (len(symbols) - i - 1)}))
    return _finish(engine, redis_client, job_id, "completed", summarize(trades), None)
