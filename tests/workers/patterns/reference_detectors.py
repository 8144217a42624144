"""The slow path every faster detector is checked against: the detectors as first written.

Frozen copies (do not optimise them): the custom detectors of ``workers/patterns/custom.py``
as they were before issue #16 item 3 (every intermediate over the full series, one fresh
``RefBars`` per detector, ``clip(nan_to_num(x))``), and the per-TA-Lib-function candlestick
confidence (TA-Lib's ``CDL*`` functions themselves and the names come from ``candlesticks``). ``reference_hits`` returns what ``detection.scan_hits(Bars(...))`` must return,
hit for hit; ``benchmarks/patterns_backfill.py`` asserts it over the whole universe and
``test_custom.py`` on real and edge-case series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import talib

from workers.patterns import candlesticks

VOLUME_WINDOW, VOLUME_SPIKE_RATIO = 20, 2.0
BREAKOUT_WINDOW = 20
RESISTANCE_WINDOW = 60
SUPPORT_WINDOW, SUPPORT_ATR_TOLERANCE = 20, 0.5
GAP_MIN_PCT = 0.5
ATR_PERIOD, RSI_PERIOD = 14, 14


def _prior_mean(x: np.ndarray, n: int) -> np.ndarray:
    sma = talib.SMA(x, n)
    out = np.full_like(x, np.nan)
    out[1:] = sma[:-1]
    return out


def candle_confidence(value: np.ndarray, rel_volume: np.ndarray, close: np.ndarray,
                      mean10: np.ndarray) -> np.ndarray:
    """The candlestick confidence of ``candlesticks``' docstring, at the hit bars."""
    base = np.where(np.abs(value) >= 200, 0.75, 0.55)
    vol = 0.10 * np.clip(np.nan_to_num(rel_volume, nan=1.0) - 1.0, 0.0, 1.0)
    prev_trend_down = close < mean10
    reversal = np.where(value > 0, prev_trend_down, ~prev_trend_down) & ~np.isnan(mean10)
    return np.round(np.clip(base + vol + 0.10 * reversal, 0.0, 1.0), 2)


def relative_volume(v: np.ndarray, n: int = VOLUME_WINDOW) -> np.ndarray:
    prior = _prior_mean(v.astype(float), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(prior > 0, v / prior, np.nan)


@dataclass
class RefBars:
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def atr(self) -> np.ndarray:
        if "atr" not in self._cache:
            self._cache["atr"] = talib.ATR(self.high, self.low, self.close, ATR_PERIOD)
        return self._cache["atr"]

    @property
    def rel_volume(self) -> np.ndarray:
        if "rv" not in self._cache:
            self._cache["rv"] = relative_volume(self.volume, VOLUME_WINDOW)
        return self._cache["rv"]


@dataclass(frozen=True)
class RefHits:
    index: np.ndarray
    confidence: np.ndarray
    indicators: dict[str, np.ndarray]
def _prior(fn: Callable, x: np.ndarray, n: int) -> np.ndarray:
    """fn (talib.MAX/MIN) over the n bars before each bar; NaN where fewer exist."""
    r = fn(x, n)
    out = np.full_like(x, np.nan)
    out[1:] = r[:-1]
    return out


def _hits(mask: np.ndarray, conf: np.ndarray, **indicators: np.ndarray) -> RefHits:
    mask = np.nan_to_num(mask, nan=0).astype(bool)
    idx = np.flatnonzero(mask)
    return RefHits(idx, np.round(np.clip(conf[idx], 0.0, 1.0), 2),
                {k: np.round(v[idx].astype(float), 4) for k, v in indicators.items()})


def _clip01(x: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)


def volume_spike(b: RefBars) -> RefHits:
    rv = b.rel_volume
    with np.errstate(invalid="ignore"):
        mask = rv >= VOLUME_SPIKE_RATIO
    return _hits(mask, 0.5 + 0.5 * _clip01((rv - VOLUME_SPIKE_RATIO) / 4.0), relative_volume=rv)


def price_breakout(b: RefBars) -> RefHits:
    level = _prior(talib.MAX, b.high, BREAKOUT_WINDOW)
    excess = b.close - level
    with np.errstate(invalid="ignore"):
        mask = excess > 0
    conf = 0.5 + 0.3 * _clip01(excess / b.atr) + 0.2 * _clip01(b.rel_volume - 1)
    return _hits(mask, conf, breakout_level=level, atr=b.atr, relative_volume=b.rel_volume)


def price_breakdown(b: RefBars) -> RefHits:
    level = _prior(talib.MIN, b.low, BREAKOUT_WINDOW)
    excess = level - b.close
    with np.errstate(invalid="ignore"):
        mask = excess > 0
    conf = 0.5 + 0.3 * _clip01(excess / b.atr) + 0.2 * _clip01(b.rel_volume - 1)
    return _hits(mask, conf, breakdown_level=level, atr=b.atr, relative_volume=b.rel_volume)


def resistance_break(b: RefBars) -> RefHits:
    level = _prior(talib.MAX, b.close, RESISTANCE_WINDOW)
    prev_close = np.concatenate([[np.nan], b.close[:-1]])
    excess = b.close - level
    with np.errstate(invalid="ignore"):
        mask = (excess > 0) & (prev_close <= level)
    return _hits(mask, 0.5 + 0.5 * _clip01(excess / b.atr), resistance=level, atr=b.atr)


def support_test(b: RefBars) -> RefHits:
    support = _prior(talib.MIN, b.low, SUPPORT_WINDOW)
    atr = b.atr
    with np.errstate(invalid="ignore"):
        mask = (b.low <= support + SUPPORT_ATR_TOLERANCE * atr) & (b.close > support)
    return _hits(mask, 0.5 + 0.5 * _clip01((b.close - support) / atr), support=support, atr=atr)


def _gaps(b: RefBars) -> tuple[np.ndarray, np.ndarray]:
    prev_high = np.concatenate([[np.nan], b.high[:-1]])
    prev_low = np.concatenate([[np.nan], b.low[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * (b.open / prev_high - 1), 100 * (1 - b.open / prev_low)


def gap_up(b: RefBars) -> RefHits:
    up, _ = _gaps(b)
    with np.errstate(invalid="ignore"):
        mask = up >= GAP_MIN_PCT
    return _hits(mask, 0.5 + 0.5 * _clip01(up / 3.0), gap_pct=up)


def gap_down(b: RefBars) -> RefHits:
    _, down = _gaps(b)
    with np.errstate(invalid="ignore"):
        mask = down >= GAP_MIN_PCT
    return _hits(mask, 0.5 + 0.5 * _clip01(down / 3.0), gap_pct=-down)


def _rsi(b: RefBars) -> tuple[np.ndarray, np.ndarray]:
    if "rsi" not in b._cache:
        b._cache["rsi"] = talib.RSI(b.close, RSI_PERIOD)
    rsi = b._cache["rsi"]
    return rsi, np.concatenate([[np.nan], rsi[:-1]])


def rsi_oversold(b: RefBars) -> RefHits:
    rsi, prev = _rsi(b)
    with np.errstate(invalid="ignore"):
        mask = (rsi < 30) & (prev >= 30)
    return _hits(mask, 0.5 + 0.5 * _clip01((30 - rsi) / 15), rsi=rsi)


def rsi_overbought(b: RefBars) -> RefHits:
    rsi, prev = _rsi(b)
    with np.errstate(invalid="ignore"):
        mask = (rsi > 70) & (prev <= 70)
    return _hits(mask, 0.5 + 0.5 * _clip01((rsi - 70) / 15), rsi=rsi)


def _ma_cross(b: RefBars, up: bool) -> RefHits:
    fast, slow = talib.SMA(b.close, 50), talib.SMA(b.close, 200)
    diff = fast - slow
    prev = np.concatenate([[np.nan], diff[:-1]])
    with np.errstate(invalid="ignore"):
        mask = (diff > 0) & (prev <= 0) if up else (diff < 0) & (prev >= 0)
        conf = 0.7 + 0.2 * (np.nan_to_num(b.rel_volume) >= 1.5)
    return _hits(mask, conf, sma50=fast, sma200=slow)


def golden_cross(b: RefBars) -> RefHits:
    return _ma_cross(b, True)


def death_cross(b: RefBars) -> RefHits:
    return _ma_cross(b, False)


# name -> (detector, direction: +1 bullish, -1 bearish, 0 neutral)
DETECTORS: dict[str, tuple[Callable[[RefBars], RefHits], int]] = {
    "Volume_Spike": (volume_spike, 0),
    "Price_Breakout": (price_breakout, 1),
    "Price_Breakdown": (price_breakdown, -1),
    "Resistance_Break": (resistance_break, 1),
    "Support_Test": (support_test, 1),
    "Gap_Up": (gap_up, 1),
    "Gap_Down": (gap_down, -1),
    "RSI_Oversold": (rsi_oversold, 1),
    "RSI_Overbought": (rsi_overbought, -1),
    "Golden_Cross": (golden_cross, 1),
    "Death_Cross": (death_cross, -1),
}


def reference_hits(arrays) -> list:
    """(pattern, direction, index, confidence, indicators) like ``scan_hits(Bars(*arrays))``, the slow way:
    per TA-Lib function its own mask, confidence and rounding; a fresh ``RefBars`` per custom detector."""
    o, h, l, c, v = arrays
    rel_volume, mean10 = relative_volume(v), _prior_mean(c, candlesticks.TREND_WINDOW)
    out = []
    for f in candlesticks.FUNCTIONS:
        signal = getattr(talib, f)(o, h, l, c)
        idx = np.flatnonzero(signal != 0)
        if idx.size == 0:
            continue
        val = signal[idx]
        conf = candle_confidence(val, rel_volume[idx], c[idx], mean10[idx])
        out.append((candlesticks.NAMES[f], 0, idx, conf, {
            "talib_value": val.astype(float),
            "relative_volume": np.round(np.nan_to_num(rel_volume[idx], nan=0.0), 4)}))
    for name, (fn, direction) in DETECTORS.items():
        hits = fn(RefBars(*arrays))
        out.append((name, direction, hits.index, hits.confidence, hits.indicators))
    return out


def same_hits(fast: list, slow: list) -> bool:
    """Equal pattern, direction, indices, confidences and indicator arrays (NaN equal to NaN), in the same order."""
    def eq(a, b):
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")

    return len(fast) == len(slow) and all(
        a[:2] == b[:2] and eq(a[2], b[2]) and eq(a[3], b[3]) and a[4].keys() == b[4].keys()
        and all(eq(a[4][k], b[4][k]) for k in a[4]) for a, b in zip(fast, slow))
