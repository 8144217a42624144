"""Our own detectors: vectorised over one bar series (numpy / TA-Lib indicators).

Every detector takes ``Bars`` and returns ``Hits`` (bar indices, confidence in 0..1,
indicator arrays for the event's ``indicators``). Levels always use bars *before*
the current one, so a bar never confirms itself. Parameters are module constants
(documented below) so the backfill, the live path and the backtests agree.

Detectors, parameters and confidence:

- Volume_Spike: volume / mean(volume of the 20 prior bars) >= 2.0.
  confidence = 0.5 + 0.5 * clip((rv - 2) / 4, 0, 1)  (2x -> 0.50, 6x or more -> 1.00)
- Price_Breakout: close > highest high of the 20 prior bars.
  confidence = 0.5 + 0.3 * clip(excess / ATR14, 0, 1) + 0.2 * clip(rv - 1, 0, 1)
- Price_Breakdown: close < lowest low of the 20 prior bars (mirror of Price_Breakout).
- Resistance_Break: close crosses above the highest close of the 60 prior bars
  (previous close at or below it). confidence = 0.5 + 0.5 * clip(excess / ATR14, 0, 1)
- Support_Test: low comes within 0.5 ATR14 of the lowest low of the 20 prior bars
  (or dips below it) and the close stays above that support.
  confidence = 0.5 + 0.5 * clip((close - support) / ATR14, 0, 1)  (a firm bounce ranks higher)
- Gap_Up / Gap_Down: open above the prior high (below the prior low) by >= 0.5 %.
  confidence = 0.5 + 0.5 * clip(gap% / 3 %, 0, 1)
- RSI_Oversold / RSI_Overbought: RSI14 crosses below 30 / above 70.
  confidence = 0.5 + 0.5 * clip(distance beyond the line / 15, 0, 1)
- Golden_Cross / Death_Cross: SMA50 crosses above / below SMA200. confidence 0.7
  (+0.2 when the bar's relative volume >= 1.5): a slow, well-known signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import talib

from .candlesticks import relative_volume

VOLUME_WINDOW, VOLUME_SPIKE_RATIO = 20, 2.0
BREAKOUT_WINDOW = 20
RESISTANCE_WINDOW = 60
SUPPORT_WINDOW, SUPPORT_ATR_TOLERANCE = 20, 0.5
GAP_MIN_PCT = 0.5
ATR_PERIOD, RSI_PERIOD = 14, 14


@dataclass
class Bars:
    """One symbol's bars as float arrays, oldest first."""

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
class Hits:
    index: np.ndarray
    confidence: np.ndarray
    indicators: dict[str, np.ndarray]  # arrays aligned with ``index``


def _prior(fn: Callable, x: np.ndarray, n: int) -> np.ndarray:
    """fn (talib.MAX/MIN) over the n bars before each bar; NaN where fewer exist."""
    r = fn(x, n)
    out = np.full_like(x, np.nan)
    out[1:] = r[:-1]
    return out


def _once(b: Bars, key: tuple, make: Callable[[], object]):
    """An intermediate two detectors share (the 20-bar prior low, the gaps, the SMAs), computed once per series."""
    if key not in b._cache:
        b._cache[key] = make()
    return b._cache[key]


def _hits(mask: np.ndarray, conf: np.ndarray, **indicators: np.ndarray) -> Hits:
    idx = np.flatnonzero(mask if mask.dtype == bool else np.nan_to_num(mask, nan=0).astype(bool))
    return Hits(idx, np.round(np.clip(conf[idx], 0.0, 1.0), 2),
                {k: np.round(v[idx].astype(float), 4) for k, v in indicators.items()})


def _clip01(x: np.ndarray) -> np.ndarray:
    """clip(nan_to_num(x), 0, 1): fmax drops NaN to 0 and fmin caps +inf at 1, in two ufuncs."""
    return np.fmin(np.fmax(x, 0.0), 1.0)


def volume_spike(b: Bars) -> Hits:
    rv = b.rel_volume
    with np.errstate(invalid="ignore"):
        mask = rv >= VOLUME_SPIKE_RATIO
    return _hits(mask, 0.5 + 0.5 * _clip01((rv - VOLUME_SPIKE_RATIO) / 4.0), relative_volume=rv)


def price_breakout(b: Bars) -> Hits:
    level = _prior(talib.MAX, b.high, BREAKOUT_WINDOW)
    excess = b.close - level
    with np.errstate(invalid="ignore"):
        mask = excess > 0
    conf = 0.5 + 0.3 * _clip01(excess / b.atr) + 0.2 * _clip01(b.rel_volume - 1)
    return _hits(mask, conf, breakout_level=level, atr=b.atr, relative_volume=b.rel_volume)


def price_breakdown(b: Bars) -> Hits:
    level = _once(b, ("prior_min_low", BREAKOUT_WINDOW), lambda: _prior(talib.MIN, b.low, BREAKOUT_WINDOW))
    excess = level - b.close
    with np.errstate(invalid="ignore"):
        mask = excess > 0
    conf = 0.5 + 0.3 * _clip01(excess / b.atr) + 0.2 * _clip01(b.rel_volume - 1)
    return _hits(mask, conf, breakdown_level=level, atr=b.atr, relative_volume=b.rel_volume)


def resistance_break(b: Bars) -> Hits:
    level = _prior(talib.MAX, b.close, RESISTANCE_WINDOW)
    prev_close = np.concatenate([[np.nan], b.close[:-1]])
    excess = b.close - level
    with np.errstate(invalid="ignore"):
        mask = (excess > 0) & (prev_close <= level)
    return _hits(mask, 0.5 + 0.5 * _clip01(excess / b.atr), resistance=level, atr=b.atr)


def support_test(b: Bars) -> Hits:
    support = _once(b, ("prior_min_low", SUPPORT_WINDOW), lambda: _prior(talib.MIN, b.low, SUPPORT_WINDOW))
    atr = b.atr
    with np.errstate(invalid="ignore"):
        mask = (b.low <= support + SUPPORT_ATR_TOLERANCE * atr) & (b.close > support)
    return _hits(mask, 0.5 + 0.5 * _clip01((b.close - support) / atr), support=support, atr=atr)


def _gaps(b: Bars) -> tuple[np.ndarray, np.ndarray]:
    return _once(b, ("gaps",), lambda: _gap_pcts(b))


def _gap_pcts(b: Bars) -> tuple[np.ndarray, np.ndarray]:
    prev_high = np.concatenate([[np.nan], b.high[:-1]])
    prev_low = np.concatenate([[np.nan], b.low[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * (b.open / prev_high - 1), 100 * (1 - b.open / prev_low)


def gap_up(b: Bars) -> Hits:
    up, _ = _gaps(b)
    with np.errstate(invalid="ignore"):
        mask = up >= GAP_MIN_PCT
    return _hits(mask, 0.5 + 0.5 * _clip01(up / 3.0), gap_pct=up)


def gap_down(b: Bars) -> Hits:
    _, down = _gaps(b)
    with np.errstate(invalid="ignore"):
        mask = down >= GAP_MIN_PCT
    return _hits(mask, 0.5 + 0.5 * _clip01(down / 3.0), gap_pct=-down)


def _rsi(b: Bars) -> tuple[np.ndarray, np.ndarray]:
    if "rsi" not in b._cache:
        b._cache["rsi"] = talib.RSI(b.close, RSI_PERIOD)
    rsi = b._cache["rsi"]
    return rsi, np.concatenate([[np.nan], rsi[:-1]])


def rsi_oversold(b: Bars) -> Hits:
    rsi, prev = _rsi(b)
    with np.errstate(invalid="ignore"):
        mask = (rsi < 30) & (prev >= 30)
    return _hits(mask, 0.5 + 0.5 * _clip01((30 - rsi) / 15), rsi=rsi)


def rsi_overbought(b: Bars) -> Hits:
    rsi, prev = _rsi(b)
    with np.errstate(invalid="ignore"):
        mask = (rsi > 70) & (prev <= 70)
    return _hits(mask, 0.5 + 0.5 * _clip01((rsi - 70) / 15), rsi=rsi)


def _ma_cross(b: Bars, up: bool) -> Hits:
    fast, slow, diff, prev = _once(b, ("sma_cross",), lambda: _sma_diff(b))
    with np.errstate(invalid="ignore"):
        mask = (diff > 0) & (prev <= 0) if up else (diff < 0) & (prev >= 0)
        conf = 0.7 + 0.2 * (b.rel_volume >= 1.5)  # NaN compares False, as nan_to_num's 0 did
    return _hits(mask, conf, sma50=fast, sma200=slow)


def _sma_diff(b: Bars) -> tuple[np.ndarray, ...]:
    fast, slow = talib.SMA(b.close, 50), talib.SMA(b.close, 200)
    diff = fast - slow
    return fast, slow, diff, np.concatenate([[np.nan], diff[:-1]])


def golden_cross(b: Bars) -> Hits:
    return _ma_cross(b, True)


def death_cross(b: Bars) -> Hits:
    return _ma_cross(b, False)


# name -> (detector, direction: +1 bullish, -1 bearish, 0 neutral)
DETECTORS: dict[str, tuple[Callable[[Bars], Hits], int]] = {
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
