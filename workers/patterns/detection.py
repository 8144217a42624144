"""Run every detector over a bar frame and turn hits into ``Detection`` records (pure, no I/O).

Tiers: ``daily`` runs on 1d bars, ``intraday`` on 1min bars, ``combo`` is a daily
pattern confirmed by an intraday Volume_Spike or Price_Breakout of the same symbol
within ``COMBO_WINDOW`` after the daily bar (see ``combine``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable

import numpy as np
import pandas as pd

from . import candlesticks, custom

TIERS = ("daily", "intraday", "combo")
TIMEFRAME_OF_TIER = {"daily": "1d", "intraday": "1min"}
# A daily bar is stamped at 00:00 UTC of its session; the session's intraday bars follow within a day.
COMBO_WINDOW = timedelta(days=1)
COMBO_CONFIRMERS = ("Volume_Spike", "Price_Breakout")
ALL_PATTERNS: tuple[str, ...] = tuple(candlesticks.NAMES.values()) + tuple(custom.DETECTORS)


@dataclass(frozen=True)
class Detection:
    symbol: str
    pattern: str
    tier: str
    bar_ts: datetime
    confidence: float
    current_price: float
    price_change: float  # % change of close against the previous close
    volume: float
    direction: int  # +1 bullish, -1 bearish, 0 neutral
    indicators: dict = field(default_factory=dict)


def bars_from_frame(frame: pd.DataFrame) -> custom.Bars:
    return custom.Bars(*(frame[c].to_numpy(dtype=float) for c in ("open", "high", "low", "close", "volume")))


def scan_hits(bars: custom.Bars, start: int = 0, patterns: Iterable[str] | None = None,
              valid_from: np.ndarray | None = None) -> list[tuple[str, int, np.ndarray, np.ndarray, dict]]:
    """(pattern, direction, index, confidence, indicators) for every detector, hits at index >= start.

    The vectorised core shared by scans, the live path, backtests and the backfill benchmark.
    ``valid_from`` (bars since the series began) masks warm-up bars of concatenated series.
    With ``patterns``, only the TA-Lib functions and detectors of those names run.
    The arrays returned may be views of one another's buffers: read them, do not write them.
    """
    wanted = set(patterns) if patterns else None
    out: list[tuple[str, int, np.ndarray, np.ndarray, dict]] = []
    rv = bars.rel_volume
    functions = candlesticks.FUNCTIONS if wanted is None else \
        tuple(f for f in candlesticks.FUNCTIONS if candlesticks.NAMES[f] in wanted)
    if functions:
        fh = candlesticks.flat_candle_hits(bars.open, bars.high, bars.low, bars.close, bars.volume, start,
                                           valid_from, rel_volume=rv, functions=functions)
        value = fh.value.astype(float)
        rv_rounded = np.round(np.nan_to_num(rv[fh.index], nan=0.0), 4)  # once for every candle hit
        b = fh.bounds
        for k, f in enumerate(fh.functions):
            lo, hi = b[k], b[k + 1]
            out.append((candlesticks.NAMES[f], 0, fh.index[lo:hi], fh.confidence[lo:hi],
                        {"talib_value": value[lo:hi], "relative_volume": rv_rounded[lo:hi]}))
    raws = [(name, direction, fn.raw(bars)) for name, (fn, direction) in custom.DETECTORS.items()
            if wanted is None or name in wanted]
    if not raws:
        return out
    # each detector's values rounded as its public function rounds them, in one call for all
    conf = np.concatenate([r[1] for _, _, r in raws]).round(2)
    values = [v for _, _, r in raws for v in r[2].values()]
    ind = np.concatenate(values, dtype=float).round(4) if values else values
    c = v = 0
    for name, direction, (idx, _, raw_ind) in raws:
        n = idx.size
        h_conf = conf[c:c + n]
        h_ind = {}
        for k in raw_ind:
            h_ind[k] = ind[v:v + n]
            v += n
        c += n
        if valid_from is not None:
            keep = (idx >= start) & (valid_from[idx] >= RESISTANCE_WARMUP)
            out.append((name, direction, idx[keep], h_conf[keep], {k: a[keep] for k, a in h_ind.items()}))
        elif start:  # indices ascend: the hits at or after start are one slice
            lo = int(np.searchsorted(idx, start))
            out.append((name, direction, idx[lo:], h_conf[lo:], {k: a[lo:] for k, a in h_ind.items()}))
        else:
            out.append((name, direction, idx, h_conf, h_ind))
    return out


# Custom detectors look back at most RESISTANCE_WINDOW (+1) bars; 200 for the SMA cross.
RESISTANCE_WARMUP = 200


def detect_frame(symbol: str, frame: pd.DataFrame, tier: str, since: datetime | None = None,
                 patterns: Iterable[str] | None = None) -> list[Detection]:
    """Detections of one symbol's bars (columns ts, open, high, low, close, volume; oldest first).

    Only bars with ``ts > since`` produce detections; earlier bars are history for lookbacks.
    """
    if frame.empty:
        return []
    ts = pd.to_datetime(frame["ts"], utc=True)
    start = 0 if since is None else int(np.searchsorted(ts.dt.tz_convert(None).to_numpy(), np.datetime64(_naive_utc(since)), "right"))
    if start >= len(frame):
        return []
    bars = bars_from_frame(frame)
    prev_close = np.concatenate([[np.nan], bars.close[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.nan_to_num(100 * (bars.close / prev_close - 1), nan=0.0)
    stamps = list(ts)  # pandas Timestamps are datetimes
    out: list[Detection] = []
    for name, direction, idx, conf, ind in scan_hits(bars, start, patterns):
        for j, i in enumerate(idx):
            d = int(np.sign(ind["talib_value"][j])) if "talib_value" in ind else direction
            out.append(Detection(
                symbol, name, tier, stamps[i], float(conf[j]), round(float(bars.close[i]), 4),
                round(float(change[i]), 4), float(bars.volume[i]), d,
                {k: _json_number(v[j]) for k, v in ind.items()}))
    out.sort(key=lambda d: (d.bar_ts, d.pattern))
    return out


def combine(daily: list[Detection], intraday: list[Detection], window: timedelta = COMBO_WINDOW) -> list[Detection]:
    """Combo tier: a daily detection confirmed by an intraday Volume_Spike/Price_Breakout
    of the same symbol within ``window`` after the daily bar.

    confidence = min(1, 0.6 * daily + 0.4 * best intraday confirmation + 0.1): agreement of
    two timeframes is stronger evidence than either alone. The combo is stamped at the daily
    bar, so it stays one event however many confirmations follow (idempotency key).
    """
    confirm: dict[str, list[Detection]] = {}
    for d in intraday:
        if d.pattern in COMBO_CONFIRMERS:
            confirm.setdefault(d.symbol, []).append(d)
    out: list[Detection] = []
    for d in daily:
        hits = [c for c in confirm.get(d.symbol, ()) if d.bar_ts <= c.bar_ts < d.bar_ts + window]
        if not hits:
            continue
        best = max(hits, key=lambda c: c.confidence)
        conf = round(min(1.0, 0.6 * d.confidence + 0.4 * best.confidence + 0.1), 2)
        out.append(Detection(d.symbol, d.pattern, "combo", d.bar_ts, conf, best.current_price,
                             d.price_change, d.volume, d.direction,
                             {**d.indicators, "confirmed_by": best.pattern,
                              "confirmed_at": best.bar_ts.timestamp()}))
    return out


def stored_direction(pattern: str, indicators: dict) -> int:
    """A stored detection's direction, as ``detect_frame`` gave it: rows keep no direction column, so
    a combo built from stored daily rows takes TA-Lib's sign, else the custom detector's own."""
    if "talib_value" in indicators:
        return int(np.sign(indicators["talib_value"]))
    return custom.DETECTORS[pattern][1] if pattern in custom.DETECTORS else 0


def _naive_utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        return t
    return t.astimezone(timezone.utc).replace(tzinfo=None)


def _json_number(x) -> float:
    x = float(x)
    return 0.0 if not np.isfinite(x) else x
