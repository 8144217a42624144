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
from sqlalchemy import Engine, text

from .detection import ALL_PATTERNS, bars_from_frame, scan_hits

PROGRESS_CHANNEL = "tickstock.events.backtesting.progress"
RESULTS_CHANNEL = "tickstock.events.backtesting.results"
REQUIRED = ("job_id", "symbols", "start_date", "end_date")


def validate_job(msg: dict) -> dict:
    """A normalised job request, or ValueError naming the field."""
    for f in REQUIRED:
        if msg.get(f) in (None, "", []):
            raise ValueError(f"{f}: required")
    if not isinstance(msg["symbols"], list) or not all(isinstance(s, str) for s in msg["symbols"]):
        raise ValueError("symbols: must be a list of tickers")
    try:
        start, end = pd.Timestamp(msg["start_date"]), pd.Timestamp(msg["end_date"])
    except ValueError as exc:
        raise ValueError(f"start_date/end_date: {exc}") from None
    if end < start:
        raise ValueError("end_date: before start_date")
    patterns = msg.get("patterns") or list(ALL_PATTERNS)
    unknown = sorted(set(patterns) - set(ALL_PATTERNS))
    if unknown:
        raise ValueError(f"patterns: unknown {unknown}")
    params = msg.get("parameters") or {}
    hold = int(params.get("hold_bars", params.get("hold_days", 5)))
    if hold < 1:
        raise ValueError("parameters.hold_bars: must be >= 1")
    return {"job_id": str(msg["job_id"]), "user_id": msg.get("user_id"),
            "symbols": [s.upper() for s in msg["symbols"]], "start_date": start.date().isoformat(),
            "end_date": end.date().isoformat(), "patterns": list(patterns), "parameters": {**params, "hold_bars": hold}}


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
        row = conn.execute(text("SELECT status, request, results FROM backtest_jobs WHERE job_id = :j"),
                           {"j": job_id}).one_or_none()
    return tuple(row) if row else None


def _finish(engine: Engine, redis_client, job_id: str, status: str, results: dict | None, error: str | None) -> dict:
    with engine.begin() as conn:
        conn.execute(text("UPDATE backtest_jobs SET status = :s, results = CAST(:r AS jsonb), error = :e, "
                          "progress = CASE WHEN :s = 'completed' THEN 1 ELSE progress END, updated_at = now() "
                          "WHERE job_id = :j"), {"s": status, "r": json.dumps(results), "e": error, "j": job_id})
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
        with engine.connect() as conn:
            frame = pd.read_sql(text(
                "SELECT ts, open, high, low, close, volume FROM market_bars WHERE symbol = :s AND timeframe = '1d' "
                "AND ts <= CAST(:end AS timestamptz) + make_interval(days => :pad) ORDER BY ts"),
                conn, params={"s": symbol, "end": end, "pad": hold * 2 + 5})
        for name, r in symbol_trades(frame, start, end, req["patterns"], hold).items():
            trades.setdefault(name, []).append(r)
        done = (i + 1) / len(symbols)
        elapsed = time.time() - t0
        with engine.begin() as conn:
            conn.execute(text("UPDATE backtest_jobs SET status = 'running', progress = :p, updated_at = now() "
                              "WHERE job_id = :j AND status <> 'cancelled'"), {"p": done, "j": job_id})
        redis_client.publish(PROGRESS_CHANNEL, json.dumps({
            "job_id": job_id, "progress": round(done, 4), "current_symbol": symbol,
            "estimated_completion": time.time() + elapsed / (i + 1) * (len(symbols) - i - 1)}))
    return _finish(engine, redis_client, job_id, "completed", summarize(trades), None)
