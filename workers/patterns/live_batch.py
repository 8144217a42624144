"""The live path for a whole universe at once: one new bar per symbol -> detections on that bar.

Why a second path: running every detector over each symbol's whole window costs ~1 ms
per symbol; a new bar only needs the *last* bar's answer. Here

- candlesticks: each symbol's last ``CANDLE_WINDOW`` bars are concatenated into one
  array and TA-Lib runs once per function (61 calls for the whole universe); hits are
  kept only at each symbol's last bar, and only where TA-Lib's lookback stays inside
  that symbol's own bars, so results equal a per-symbol TA-Lib run;
- custom detectors: the last bar is evaluated for all symbols together on a
  (symbols x bars) panel, with the same levels and confidence formulas as
  ``custom.py`` (ATR/RSI via TA-Lib per row, since they are recursive).

``tests/workers/patterns/test_live_batch.py`` checks that this path finds exactly what
``detection.detect_frame`` finds on the same window, on real bars.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import talib

from . import candlesticks, custom
from .detection import Detection

CANDLE_WINDOW = 40  # > the largest TA-Lib candlestick lookback (14) + the 20-bar volume mean
PANEL_WINDOW = 261  # SMA200 needs 200 bars and its previous value one more; HISTORY_BARS + 1


def _clip01(x):
    return np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)


def _r2(x):
    return np.round(np.clip(x, 0.0, 1.0), 2)


def detect_last(symbols: list[str], windows: list[pd.DataFrame], tier: str = "daily") -> list[Detection]:
    """Detections on the last bar of each window (ts, open, high, low, close, volume; oldest first).

    Windows shorter than PANEL_WINDOW are allowed: indicators that need more bars are NaN there
    and their detectors do not fire, exactly as in the per-symbol path.
    """
    if not symbols:
        return []
    n = len(symbols)
    w = min(PANEL_WINDOW, max(len(f) for f in windows))
    panel = {c: np.full((n, w), np.nan) for c in ("open", "high", "low", "close", "volume")}
    last_ts: list[datetime] = []
    for r, f in enumerate(windows):
        f = f.iloc[-w:]
        for c in panel:
            panel[c][r, w - len(f):] = f[c].to_numpy(dtype=float)
        last_ts.append(pd.Timestamp(f["ts"].iloc[-1]).to_pydatetime())
    o, h, l, c, v = (panel[k] for k in ("open", "high", "low", "close", "volume"))
    prev_close = c[:, -2]
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.nan_to_num(100 * (c[:, -1] / prev_close - 1), nan=0.0)
    out: list[Detection] = []

    def emit(rows: np.ndarray, name: str, direction, conf: np.ndarray, **ind: np.ndarray) -> None:
        for r in np.flatnonzero(rows):
            d = int(direction[r]) if isinstance(direction, np.ndarray) else direction
            out.append(Detection(symbols[r], name, tier, last_ts[r], float(conf[r]), round(float(c[r, -1]), 4),
                                 round(float(change[r]), 4), float(v[r, -1]), d,
                                 {k: _num(np.round(a[r], 4)) for k, a in ind.items()}))

    _candles(symbols, windows, emit, n)

    with np.errstate(invalid="ignore", divide="ignore"):
        vol_mean = v[:, -21:-1].mean(axis=1)
        rv = np.where(vol_mean > 0, v[:, -1] / vol_mean, np.nan)
        atr = np.array([talib.ATR(h[r], l[r], c[r], custom.ATR_PERIOD)[-1] for r in range(n)])
        rsi_rows = [talib.RSI(c[r], custom.RSI_PERIOD) for r in range(n)]
        rsi, rsi_prev = np.array([x[-1] for x in rsi_rows]), np.array([x[-2] for x in rsi_rows])
        rv_c = _clip01(rv - 1)

        emit(rv >= custom.VOLUME_SPIKE_RATIO, "Volume_Spike", 0,
             _r2(0.5 + 0.5 * _clip01((rv - custom.VOLUME_SPIKE_RATIO) / 4.0)), relative_volume=rv)
        lvl = h[:, -21:-1].max(axis=1)
        ex = c[:, -1] - lvl
        emit(ex > 0, "Price_Breakout", 1, _r2(0.5 + 0.3 * _clip01(ex / atr) + 0.2 * rv_c),
             breakout_level=lvl, atr=atr, relative_volume=rv)
        lvl_d = l[:, -21:-1].min(axis=1)
        ex_d = lvl_d - c[:, -1]
        emit(ex_d > 0, "Price_Breakdown", -1, _r2(0.5 + 0.3 * _clip01(ex_d / atr) + 0.2 * rv_c),
             breakdown_level=lvl_d, atr=atr, relative_volume=rv)
        res = c[:, -61:-1].max(axis=1)
        ex_r = c[:, -1] - res
        emit((ex_r > 0) & (prev_close <= res), "Resistance_Break", 1, _r2(0.5 + 0.5 * _clip01(ex_r / atr)),
             resistance=res, atr=atr)
        sup = l[:, -21:-1].min(axis=1)
        emit((l[:, -1] <= sup + custom.SUPPORT_ATR_TOLERANCE * atr) & (c[:, -1] > sup), "Support_Test", 1,
             _r2(0.5 + 0.5 * _clip01((c[:, -1] - sup) / atr)), support=sup, atr=atr)
        up = 100 * (o[:, -1] / h[:, -2] - 1)
        down = 100 * (1 - o[:, -1] / l[:, -2])
        emit(up >= custom.GAP_MIN_PCT, "Gap_Up", 1, _r2(0.5 + 0.5 * _clip01(up / 3.0)), gap_pct=up)
        emit(down >= custom.GAP_MIN_PCT, "Gap_Down", -1, _r2(0.5 + 0.5 * _clip01(down / 3.0)), gap_pct=-down)
        emit((rsi < 30) & (rsi_prev >= 30), "RSI_Oversold", 1, _r2(0.5 + 0.5 * _clip01((30 - rsi) / 15)), rsi=rsi)
        emit((rsi > 70) & (rsi_prev <= 70), "RSI_Overbought", -1, _r2(0.5 + 0.5 * _clip01((rsi - 70) / 15)),
             rsi=rsi)
        if w >= 201:
            f50, f50p = c[:, -50:].mean(axis=1), c[:, -51:-1].mean(axis=1)
            s200, s200p = c[:, -200:].mean(axis=1), c[:, -201:-1].mean(axis=1)
            diff, prev = f50 - s200, f50p - s200p
            conf = _r2(0.7 + 0.2 * (np.nan_to_num(rv) >= 1.5))
            emit((diff > 0) & (prev <= 0), "Golden_Cross", 1, conf, sma50=f50, sma200=s200)
            emit((diff < 0) & (prev >= 0), "Death_Cross", -1, conf, sma50=f50, sma200=s200)
    out.sort(key=lambda d: (d.symbol, d.pattern))
    return out


def _candles(symbols, windows, emit, n) -> None:
    """TA-Lib once per function over the concatenated tails; keep each symbol's last bar."""
    tails = [f.iloc[-CANDLE_WINDOW:] for f in windows]
    lengths = np.array([len(t) for t in tails])
    ends = np.cumsum(lengths) - 1
    cat = {k: np.concatenate([t[k].to_numpy(dtype=float) for t in tails]) for k in
           ("open", "high", "low", "close", "volume")}
    valid_from = np.concatenate([np.arange(m) for m in lengths])
    rows_of = np.full(len(valid_from), -1)
    rows_of[ends] = np.arange(n)
    rv = np.nan_to_num(candlesticks.relative_volume(cat["volume"])[ends], nan=0.0)
    for ch in candlesticks.detect_candles(cat["open"], cat["high"], cat["low"], cat["close"], cat["volume"],
                                          valid_from=valid_from):
        at_end = rows_of[ch.index] >= 0
        if not at_end.any():
            continue
        rows = np.zeros(n, bool)
        r_idx = rows_of[ch.index[at_end]]
        rows[r_idx] = True
        conf = np.zeros(n)
        conf[r_idx] = ch.confidence[at_end]
        direction = np.zeros(n, int)
        direction[r_idx] = np.sign(ch.value[at_end]).astype(int)
        talib_value = np.zeros(n)
        talib_value[r_idx] = ch.value[at_end]
        emit(rows, ch.name, direction, conf, talib_value=talib_value, relative_volume=rv)


def _num(x) -> float:
    x = float(x)
    return 0.0 if not np.isfinite(x) else x
