"""The live path for a whole universe at once: one new bar per symbol -> detections on that bar.

Why a second path: running every detector over each symbol's whole window costs ~1 ms
per symbol; a new bar only needs the *last* bar's answer. Here

- candlesticks: each symbol's last ``CANDLE_WINDOW`` bars are concatenated into one
  array and TA-Lib runs once per function (61 calls for the whole universe); hits are
  kept only at each symbol's last bar, and only where TA-Lib's lookback stays inside
  that symbol's own bars, so results equal a per-symbol TA-Lib run;
- custom detectors: the last bar is evaluated for all symbols together on a
  (symbols x bars) panel, with the same levels and confidence formulas as
  ``custom.py`` (ATR/RSI via TA-Lib per row, since they are recursive: ~1.6 ms each a tick for
  503 rows; a numpy loop over the bar columns, bit-equal to TA-Lib 0.8's RSI, measured no faster,
  and its ATR smooths with an fma, which numpy cannot round alike).

``tests/workers/patterns/test_live_batch.py`` checks that this path finds exactly what
``detection.detect_frame`` finds on the same window, on real bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import talib
from numpy.lib.stride_tricks import sliding_window_view

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
_LOOKBACK = np.array([candlesticks.LOOKBACK[f] for f in candlesticks.FUNCTIONS])
_NAMES = [candlesticks.NAMES[f] for f in candlesticks.FUNCTIONS]


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
    h, l, c = (_panel(seg, k, w) for k in ("high", "low", "close"))
    o, v = _panel(seg, "open", 1), _panel(seg, "volume", custom.VOLUME_WINDOW + 1)  # only their last bars are read
    last_ts = seg.last_ts
    prev_close = c[:, -2]
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.nan_to_num(100 * (c[:, -1] / prev_close - 1), nan=0.0)
    # Per symbol, once (rounded as before: Python's round for the price and change, numpy's for indicators).
    price = [round(x, 4) for x in c[:, -1].tolist()]
    chg = [round(x, 4) for x in change.tolist()]
    vol = v[:, -1].tolist()
    out: list[Detection] = []

    def add(idx: list[int], names: list[str], dirs: list[int], conf: list[float],
            ind: list[tuple[str, list[float]]]) -> None:
        """Detections of symbols ``idx`` (lists aligned with it; indicators already rounded)."""
        for j, r in enumerate(idx):
            out.append(Detection(symbols[r], names[j], tier, last_ts[r], conf[j], price[r], chg[r], vol[r], dirs[j],
                                 {k: a[j] for k, a in ind}))

    def emit(rows: np.ndarray, name: str, direction: int, conf: np.ndarray, **ind: np.ndarray) -> None:
        idx = np.flatnonzero(rows)
        if len(idx):
            add(idx.tolist(), [name] * len(idx), [direction] * len(idx), conf[idx].tolist(),
                [(k, _num4(np.asarray(a, dtype=float)[idx])) for k, a in ind.items()])

    _candles(seg, add)

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


def _num4(a: np.ndarray) -> list[float]:
    """Rounded to 4 places, non-finite -> 0 (as ``_num``): ``nan_to_num(round(a, 4), nan=0, posinf=0, neginf=0)``."""
    r = np.round(a, 4)
    r[~np.isfinite(r)] = 0.0
    return r.tolist()


def _panel(seg: Segments, k: str, w: int) -> np.ndarray:
    """Column ``k``'s last ``w`` bars of each symbol as one row, NaN-padded on the left (symbols x w).

    Each row is one contiguous slice of the flat array (a row gather of a sliding-window view);
    the few symbols with fewer than ``w`` bars are then padded one by one."""
    flat = np.asarray(seg.data[k], dtype=float)
    lengths, n = seg.lengths, len(seg.lengths)
    ends = np.cumsum(lengths)
    a = sliding_window_view(flat, w)[np.maximum(ends - w, 0)] if len(flat) >= w else np.empty((n, w))
    for r in np.flatnonzero(lengths < w).tolist():
        pad = w - int(lengths[r])
        a[r, :pad] = np.nan
        a[r, pad:] = flat[ends[r] - lengths[r]:ends[r]]
    return a


def _candles(seg: Segments, add) -> None:
    """TA-Lib once per function over the concatenated tails (each symbol's last CANDLE_WINDOW bars);
    only each symbol's last bar is read, and only where TA-Lib's lookback stays inside that symbol's
    own bars. Relative volume, the prior 10-bar mean and confidence as ``flat_candle_hits`` computes
    them (elementwise, so only at the last bars)."""
    tail = np.minimum(seg.lengths, CANDLE_WINDOW)
    cat_end = np.cumsum(tail)
    # the flat index of every tail bar, symbol after symbol
    at = np.repeat(np.cumsum(seg.lengths) - cat_end, tail) + np.arange(int(cat_end[-1]))
    o, h, l, c, v = (np.asarray(seg.data[k], dtype=float)[at] for k in COLUMNS)
    last = cat_end - 1  # each symbol's last bar in the tails
    age = tail - 1  # bars of its own before it (``valid_from`` there)
    signals = np.array([getattr(talib, f)(o, h, l, c)[last] for f in candlesticks.FUNCTIONS])
    fn, rows = np.nonzero((signals != 0) & (age >= _LOOKBACK[:, None]))  # by function, then symbol
    if not len(rows):
        return
    value = signals[fn, rows]
    prior = np.where(last > 0, talib.SMA(v, candlesticks.VOLUME_WINDOW)[last - 1], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        rv = np.where((prior > 0) & (age >= candlesticks.VOLUME_WINDOW), v[last] / prior, np.nan)
    mean10 = np.where((last > 0) & (age >= candlesticks.TREND_WINDOW),
                      talib.SMA(c, candlesticks.TREND_WINDOW)[last - 1], np.nan)
    conf = candlesticks.candle_confidence(value, rv[rows], c[last][rows], mean10[rows])
    add(rows.tolist(), [_NAMES[k] for k in fn.tolist()], np.sign(value).astype(int).tolist(), conf.tolist(),
        [("talib_value", _num4(value.astype(float))), ("relative_volume", _num4(np.nan_to_num(rv, nan=0.0)[rows]))])
