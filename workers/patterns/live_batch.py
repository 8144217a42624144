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

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import talib

from . import candlesticks, custom
from .detection import Detection

CANDLE_WINDOW = 40  # > the largest TA-Lib candlestick lookback (14) + the 20-bar volume mean
PANEL_WINDOW = 261  # SMA200 needs 200 bars and its previous value one more; HISTORY_BARS + 1
MIN_PANEL = custom.RESISTANCE_WINDOW + 1  # the longest lookback but the SMA cross (gated on w >= 201)


def _clip01(x):
    return np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)


def _r2(x):
    return np.round(np.clip(x, 0.0, 1.0), 2)


COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass
class Segments:
    """Several symbols' windows back to back (oldest first within each), as flat arrays."""

    symbols: list[str]
    lengths: np.ndarray  # bars per symbol
    last_ts: list[datetime]
    data: dict[str, np.ndarray]  # COLUMNS -> flat float arrays

    @classmethod
    def from_frames(cls, symbols: list[str], windows: list[pd.DataFrame]) -> "Segments":
        return cls(list(symbols), np.array([len(f) for f in windows]),
                   [pd.Timestamp(f["ts"].iloc[-1]).to_pydatetime() for f in windows],
                   {k: np.concatenate([f[k].to_numpy(dtype=float) for f in windows]) for k in COLUMNS})


def detect_last(symbols: list[str], windows: list[pd.DataFrame], tier: str = "daily") -> list[Detection]:
    """Detections on the last bar of each window (ts, open, high, low, close, volume; oldest first).

    Windows shorter than PANEL_WINDOW are allowed: indicators that need more bars are NaN there
    and their detectors do not fire, exactly as in the per-symbol path.
    """
    if not symbols:
        return []
    return detect_last_segments(Segments.from_frames(symbols, windows), tier)


def detect_last_segments(seg: Segments, tier: str = "daily") -> list[Detection]:
    """``detect_last`` on flat arrays (the live path reads them straight from COPY)."""
    symbols, n = seg.symbols, len(seg.symbols)
    if n == 0:
        return []
    # At least MIN_PANEL columns, NaN-padded on the left: a listing's first bars have no previous
    # close (change 0) and too few bars for a lookback, whose level is then NaN and does not fire
    # (as talib.MAX/MIN in the per-symbol path), instead of an IndexError or a level of fewer bars.
    w = int(max(MIN_PANEL, min(PANEL_WINDOW, seg.lengths.max())))
    ends = np.cumsum(seg.lengths)
    pos_from_end = np.repeat(ends, seg.lengths) - 1 - np.arange(ends[-1])  # 0 = a symbol's newest bar
    row_of = np.repeat(np.arange(n), seg.lengths)
    keep = pos_from_end < w
    cols = w - 1 - pos_from_end[keep]
    panel = {}
    for k in COLUMNS:
        a = np.full((n, w), np.nan)
        a[row_of[keep], cols] = seg.data[k][keep]
        panel[k] = a
    last_ts = seg.last_ts
    o, h, l, c, v = (panel[k] for k in ("open", "high", "low", "close", "volume"))
    prev_close = c[:, -2]
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.nan_to_num(100 * (c[:, -1] / prev_close - 1), nan=0.0)
    out: list[Detection] = []

    def emit(rows: np.ndarray, name: str, direction, conf: np.ndarray, **ind: np.ndarray) -> None:
        idx = np.flatnonzero(rows)
        if not len(idx):
            return
        # Rounded (non-finite -> 0, as _num) once per indicator for all hits, not per hit.
        vals = {k: np.nan_to_num(np.round(np.asarray(a, dtype=float)[idx], 4), nan=0.0, posinf=0.0,
                                 neginf=0.0).tolist() for k, a in ind.items()}
        dirs = direction[idx].tolist() if isinstance(direction, np.ndarray) else [direction] * len(idx)
        price, chg, vol, cf = c[idx, -1].tolist(), change[idx].tolist(), v[idx, -1].tolist(), conf[idx].tolist()
        for j, r in enumerate(idx.tolist()):
            out.append(Detection(symbols[r], name, tier, last_ts[r], cf[j], round(price[j], 4), round(chg[j], 4),
                                 vol[j], int(dirs[j]), {k: a[j] for k, a in vals.items()}))

    _candles(seg, pos_from_end, emit, n)

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


def _candles(seg: Segments, pos_from_end: np.ndarray, emit, n: int) -> None:
    """TA-Lib once per function over the concatenated tails; keep each symbol's last bar."""
    tail = pos_from_end < CANDLE_WINDOW
    cat = {k: np.ascontiguousarray(seg.data[k][tail]) for k in COLUMNS}
    lengths = np.minimum(seg.lengths, CANDLE_WINDOW)
    ends = np.cumsum(lengths) - 1
    valid_from = (lengths.repeat(lengths) - 1) - pos_from_end[tail]
    rows_of = np.full(len(valid_from), -1)
    rows_of[ends] = np.arange(n)
    rv = candlesticks.relative_volume(cat["volume"])[ends]
    rv = np.nan_to_num(np.where(valid_from[ends] >= candlesticks.VOLUME_WINDOW, rv, np.nan), nan=0.0)
    for ch in candlesticks.detect_candles(cat["open"], cat["high"], cat["low"], cat["close"], cat["volume"],
                                          valid_from=valid_from, only=rows_of >= 0):
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

